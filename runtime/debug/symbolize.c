/*
 * runtime/debug/symbolize.c: names for code addresses, for stack dumps.
 *
 * dladdr() knows only the dynamic symbol table: the exported functions of
 * shared libraries, and nothing of a program linked without -rdynamic or of
 * any static function, which is most of what a task's stack holds. So a
 * lookup first asks dladdr1() for the module (its file and load bias) and
 * for an exported symbol; failing that it reads the module's ELF symbol
 * table (.symtab, else .dynsym) from its file on disk, mapped read-only
 * once per symbolizer, and looks for the function whose range holds the
 * address. A stripped module, or one whose file is gone, gives
 * "module+0xoffset", which addr2line turns into a line; an address in no
 * module gives the bare address.
 *
 * A symbolizer is a cache of mapped modules, made for one dump and freed
 * after it, so nothing stays mapped between dumps and nothing is shared
 * between threads.
 */
#include <dlfcn.h>
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "alloc.h"
#include "debug_int.h"

typedef struct module {
	struct module *next;
	const struct link_map *lm;  /* the key */
	const char *path;           /* borrowed from lm (or a constant) */
	const unsigned char *map;   /* the file, mapped; NULL if unreadable */
	size_t len;
	const ElfW(Sym) *syms;
	size_t nsyms;
	const char *strtab;
	size_t strsz;
} module_t;

struct coil__symbolizer {
	module_t *mods;
};

coil__symbolizer_t *coil__sym_new(void)
{
	return coil__libc_calloc(1, sizeof(coil__symbolizer_t));
}

void coil__sym_free(coil__symbolizer_t *s)
{
	if (!s)
		return;
	while (s->mods) {
		module_t *m = s->mods;
		s->mods = m->next;
		if (m->map)
			munmap((void *)m->map, m->len);
		free(m);
	}
	free(s);
}

/* Finds the symbol table of the mapped ELF file m (every offset checked
 * against the file's size: a truncated or foreign file gives none). */
static void module_parse(module_t *m)
{
	const unsigned char *p = m->map;
	if (m->len < sizeof(ElfW(Ehdr)) || memcmp(p, ELFMAG, SELFMAG) != 0)
		return;
	const ElfW(Ehdr) *eh = (const ElfW(Ehdr) *)p;
#if __SIZEOF_POINTER__ == 8
	if (eh->e_ident[EI_CLASS] != ELFCLASS64)
		return;
#else
	if (eh->e_ident[EI_CLASS] != ELFCLASS32)
		return;
#endif
	if (eh->e_shentsize != sizeof(ElfW(Shdr)) || eh->e_shoff == 0 ||
	    eh->e_shoff > m->len ||
	    (size_t)eh->e_shnum > (m->len - eh->e_shoff) / sizeof(ElfW(Shdr)))
		return;
	const ElfW(Shdr) *sh = (const ElfW(Shdr) *)(p + eh->e_shoff);
	const ElfW(Shdr) *best = NULL;
	for (unsigned i = 0; i < eh->e_shnum; i++) {
		if (sh[i].sh_type == SHT_SYMTAB) {
			best = &sh[i];
			break;
		}
		if (sh[i].sh_type == SHT_DYNSYM && !best)
			best = &sh[i];
	}
	if (!best || best->sh_link >= eh->e_shnum ||
	    best->sh_entsize != sizeof(ElfW(Sym)))
		return;
	const ElfW(Shdr) *str = &sh[best->sh_link];
	if (best->sh_offset > m->len || best->sh_size > m->len - best->sh_offset ||
	    str->sh_offset > m->len || str->sh_size > m->len - str->sh_offset ||
	    str->sh_size == 0)
		return;
	m->syms = (const ElfW(Sym) *)(p + best->sh_offset);
	m->nsyms = best->sh_size / sizeof(ElfW(Sym));
	m->strtab = (const char *)(p + str->sh_offset);
	m->strsz = str->sh_size;
}

static module_t *module_get(coil__symbolizer_t *s, const struct link_map *lm)
{
	for (module_t *m = s->mods; m; m = m->next)
		if (m->lm == lm)
			return m;
	module_t *m = coil__libc_calloc(1, sizeof(*m));
	if (!m)
		return NULL;
	m->lm = lm;
	/* The main program's link map has an empty name. */
	m->path = lm->l_name && *lm->l_name ? lm->l_name : "/proc/self/exe";
	int fd = open(m->path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0) {
		void *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (map != MAP_FAILED) {
			m->map = map;
			m->len = (size_t)st.st_size;
			module_parse(m);
		}
	}
	if (fd >= 0)
		close(fd);
	m->next = s->mods;
	s->mods = m;
	return m;
}

/* The function symbol of m whose range holds the link-time address a. */
static const ElfW(Sym) *module_find(const module_t *m, uintptr_t a)
{
	const ElfW(Sym) *hit = NULL;
	for (size_t i = 0; i < m->nsyms; i++) {
		const ElfW(Sym) *y = &m->syms[i];
		unsigned type = ELF64_ST_TYPE(y->st_info);
		if ((type != STT_FUNC && type != STT_GNU_IFUNC) ||
		    y->st_shndx == SHN_UNDEF || y->st_name >= m->strsz)
			continue;
		if (a >= y->st_value && a - y->st_value < y->st_size) {
			/* Aliases share a range: prefer a global name. */
			if (!hit || ELF64_ST_BIND(y->st_info) == STB_GLOBAL)
				hit = y;
		}
	}
	return hit;
}

static const char *base_name(const char *path)
{
	const char *b = strrchr(path, '/');
	return b ? b + 1 : path;
}

const char *coil__sym_name(coil__symbolizer_t *s, const void *pc, bool ret_addr,
			   char *buf, size_t cap, const char **module)
{
	uintptr_t a = (uintptr_t)pc;
	/* A return address points after the call: the call itself, which is
	 * what the frame is in, is one byte before (it may be the last
	 * instruction of its function). */
	uintptr_t look = ret_addr && a ? a - 1 : a;
	Dl_info info;
	struct link_map *lm = NULL;
	if (module)
		*module = NULL;
	if (!dladdr1((void *)look, &info, (void **)&lm, RTLD_DL_LINKMAP) || !lm) {
		snprintf(buf, cap, "0x%lx", (unsigned long)a);
		return buf;
	}
	const char *path = lm->l_name && *lm->l_name ? lm->l_name :
			   info.dli_fname ? info.dli_fname : "";
	if (module)
		*module = base_name(path);
	if (info.dli_sname && info.dli_saddr) {
		snprintf(buf, cap, "%s+0x%lx", info.dli_sname,
			 (unsigned long)(a - (uintptr_t)info.dli_saddr));
		return buf;
	}
	module_t *m = s ? module_get(s, lm) : NULL;
	const ElfW(Sym) *y = m ? module_find(m, look - lm->l_addr) : NULL;
	if (y) {
		size_t max = m->strsz - y->st_name;
		const char *name = m->strtab + y->st_name;
		int n = (int)strnlen(name, max < 256 ? max : 256);
		snprintf(buf, cap, "%.*s+0x%lx", n, name,
			 (unsigned long)(a - lm->l_addr - y->st_value));
		return buf;
	}
	snprintf(buf, cap, "%s+0x%lx", *path ? base_name(path) : "?",
		 (unsigned long)(a - lm->l_addr));
	return buf;
}
