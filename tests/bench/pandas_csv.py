# SPDX-License-Identifier: MIT
"""pandas_csv.py - pandas read_csv of ~100 MB and groupbys (bench row `pandas`).

Reads the CSV that scripts/bench.py generated (path in argv[1]: ~2M rows of
an int key, a category string, two floats and a short text), then groups it
three ways: what a data-analysis script spends its time and memory on.
Usage: pandas_csv.py CSV
"""

import sys

import pandas as pd

import benchlib


def main():
    df = pd.read_csv(sys.argv[1])
    a = df.groupby("key")["x"].sum()
    b = df.groupby("cat").agg({"x": "mean", "y": "max"})
    c = df.groupby(["cat", df["key"] % 10])["y"].count()
    print("pandas: %d rows, %d %d %d groups" % (len(df), len(a), len(b), len(c)))
    benchlib.report()


if __name__ == "__main__":
    main()
