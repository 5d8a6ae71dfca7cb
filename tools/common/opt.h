/* SPDX-License-Identifier: MIT */
/*
 * One option table per command: each row gives the long and short name, the argument, the
 * parser and its target, and the help text. The same table builds the getopt_long array,
 * parses, and prints --help, so the three cannot drift apart (wireguard-tools' command
 * table, one level down).
 */
#ifndef VHU_TOOLS_OPT_H
#define VHU_TOOLS_OPT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

struct opt;

/* Parses arg (NULL for an option without one) into o->target. 0, or -EINVAL when malformed. */
typedef int (*opt_parse_fn)(const struct opt *o, const char *arg);

struct opt {
	const char *name;   /* long name, without the dashes */
	char short_name;    /* 0: long only */
	const char *arg;    /* argument name for --help ("PATH"); NULL: takes none */
	opt_parse_fn parse; /* one of the opt_* parsers below, or the command's own */
	void *target;
	const char *help; /* may hold '\n': continuation lines are indented under it */
	long min, max;	  /* opt_uint, opt_int: the accepted range */
};

struct opt_cmd {
	const char *prog;     /* "vhu-net", "vhu-fe probe": the prefix of error messages */
	const char *synopsis; /* "Usage: ..." line(s) */
	const char *summary;  /* one paragraph under it */
	const struct opt *opts;
	unsigned nopts;
	const char *epilog; /* after the options, or NULL */
};

#define OPT_CMD_OPTS(table) .opts = (table), .nopts = sizeof(table) / sizeof((table)[0])

#define OPT_LIST_MAX 16

/* A repeatable option's arguments, in order. */
struct opt_list {
	unsigned n;
	const char *v[OPT_LIST_MAX];
};

/* The standard parsers. */
int opt_flag(const struct opt *o, const char *arg);	  /* bool: set to true */
int opt_clear(const struct opt *o, const char *arg);	  /* bool: set to false */
int opt_str(const struct opt *o, const char *arg);	  /* const char *: the argument */
int opt_uint(const struct opt *o, const char *arg);	  /* unsigned in [min, max] */
int opt_int(const struct opt *o, const char *arg);	  /* int in [min, max] */
int opt_double(const struct opt *o, const char *arg);	  /* double, >= 0 */
int opt_size(const struct opt *o, const char *arg);	  /* uint64_t, K/M/G suffixes */
int opt_list(const struct opt *o, const char *arg);	  /* struct opt_list: up to max */
int opt_sock_mode(const struct opt *o, const char *arg);  /* int: octal 0..0777 */
int opt_sock_group(const struct opt *o, const char *arg); /* gid_t: name or number */

/*
 * Parses argv against the table (--help/-h is always there). Returns 0 to go on, 1 when
 * --help was given (printed on stdout: the caller exits 0), or -EINVAL after printing what
 * was wrong and a hint on stderr (the caller exits 2). Positional arguments are refused.
 */
int opt_parse(const struct opt_cmd *c, int argc, char **argv);
/* The --help text. */
void opt_usage(const struct opt_cmd *c, FILE *f);

#endif
