/* SPDX-License-Identifier: MIT */
/*
 * elfsym.c - name a code address from the ELF file it was loaded from.
 * SIGNAL-SAFE FILE.
 *
 * libunwind's unw_get_proc_name allocates, so the dump cannot use it. This
 * reads the library's section headers, then its symbol table (.symtab when
 * the file has one, else .dynsym) in small pieces through a stack buffer,
 * looking for the function whose [value, value + size) holds the address,
 * and finally the name from the linked string table. Only open, lseek, read
 * and close: nothing is mapped or allocated. Stripped libraries still have
 * .dynsym (exported functions); static functions stay unnamed ("?").
 *
 * Allowed calls: open, lseek, read, close, memcpy.
 */
#include <elf.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "oom_internal.h"

/* Read exactly n bytes at off. 0, or -1. */
static int read_at(int fd, uint64_t off, void *buf, size_t n) {
    if (lseek(fd, (off_t)off, SEEK_SET) != (off_t)off)
        return -1;
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r <= 0)
            return -1;
        got += (size_t)r;
    }
    return 0;
}

/* Section header i. 0, or -1. */
static int section(int fd, const Elf64_Ehdr *eh, unsigned i, Elf64_Shdr *sh) {
    if (i >= eh->e_shnum || eh->e_shentsize != sizeof *sh)
        return -1;
    return read_at(fd, eh->e_shoff + (uint64_t)i * sizeof *sh, sh, sizeof *sh);
}

/* The symbol table to search: .symtab if present, else .dynsym. 0, or -1. */
static int find_symtab(int fd, const Elf64_Ehdr *eh, Elf64_Shdr *symtab, Elf64_Shdr *strtab) {
    int found = 0;
    for (unsigned i = 0; i < eh->e_shnum && found != 2; i++) {
        Elf64_Shdr sh;
        if (section(fd, eh, i, &sh) != 0)
            return -1;
        if (sh.sh_type == SHT_SYMTAB || (sh.sh_type == SHT_DYNSYM && !found)) {
            *symtab = sh;
            found = sh.sh_type == SHT_SYMTAB ? 2 : 1;
        }
    }
    if (!found || symtab->sh_entsize != sizeof(Elf64_Sym))
        return -1;
    return section(fd, eh, symtab->sh_link, strtab);
}

/* The function symbol holding vaddr, searched in pieces. 0, or -1. */
static int find_sym(int fd, const Elf64_Shdr *symtab, uint64_t vaddr, Elf64_Sym *best) {
    Elf64_Sym buf[128];
    uint64_t n = symtab->sh_size / sizeof(Elf64_Sym);
    for (uint64_t i = 0; i < n; i += 128) {
        uint64_t k = n - i < 128 ? n - i : 128;
        if (read_at(fd, symtab->sh_offset + i * sizeof(Elf64_Sym), buf, k * sizeof *buf) != 0)
            return -1;
        for (uint64_t j = 0; j < k; j++) {
            const Elf64_Sym *s = &buf[j];
            if (ELF64_ST_TYPE(s->st_info) != STT_FUNC || !s->st_value)
                continue;
            if (vaddr >= s->st_value && vaddr - s->st_value < (s->st_size ? s->st_size : 1)) {
                *best = *s;
                return 0;
            }
        }
    }
    return -1;
}

/* Where an ET_EXEC file (a non-PIE interpreter) is linked to load: its
 * first PT_LOAD's address, page-aligned (the start of its first mapping);
 * symbols there are absolute. 0 for a PIE or a shared library. */
static uint64_t link_base(int fd, const Elf64_Ehdr *eh) {
    if (eh->e_type != ET_EXEC || eh->e_phentsize != sizeof(Elf64_Phdr))
        return 0;
    for (unsigned i = 0; i < eh->e_phnum; i++) {
        Elf64_Phdr ph;
        if (read_at(fd, eh->e_phoff + (uint64_t)i * sizeof ph, &ph, sizeof ph) != 0)
            return 0;
        if (ph.p_type == PT_LOAD)
            return ph.p_vaddr & ~(uint64_t)0xfff;
    }
    return 0;
}

/*
 * fil_oom_elf_symbol - name of the function at vaddr (an address relative to
 * the library's load address: its first mapping) in the ELF file at path:
 * copies the name into name (cap bytes, NUL-terminated) and its offset into
 * *off. 0, or -1 (name left unchanged). SIGNAL CONTEXT: stack buffers only.
 */
int fil_oom_elf_symbol(const char *path, uint64_t vaddr, char *name, size_t cap, uint64_t *off) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    Elf64_Ehdr eh;
    Elf64_Shdr symtab, strtab;
    Elf64_Sym sym;
    int r = -1;
    int elf = read_at(fd, 0, &eh, sizeof eh) == 0 && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0 &&
              eh.e_ident[EI_CLASS] == ELFCLASS64;
    if (elf)
        vaddr += link_base(fd, &eh);
    if (elf && find_symtab(fd, &eh, &symtab, &strtab) == 0 &&
        find_sym(fd, &symtab, vaddr, &sym) == 0 && sym.st_name < strtab.sh_size) {
        size_t n = cap - 1;
        if (strtab.sh_size - sym.st_name < n)
            n = (size_t)(strtab.sh_size - sym.st_name);
        if (read_at(fd, strtab.sh_offset + sym.st_name, name, n) == 0) {
            name[n] = 0;
            name[strnlen(name, n)] = 0;
            *off = vaddr - sym.st_value;
            r = 0;
        }
    }
    close(fd);
    return r;
}
