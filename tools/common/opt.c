/* SPDX-License-Identifier: MIT */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "listen.h"
#include "opt.h"
#include "size.h"

#define OPT_MAX	  64
#define HELP_COL  27  /* where help text starts */
#define OPT_LONG0 256 /* getopt_long values of long-only options: OPT_LONG0 + row */

int opt_flag(const struct opt *o, const char *arg)
{
	(void)arg;
	*(bool *)o->target = true;
	return 0;
}

int opt_clear(const struct opt *o, const char *arg)
{
	(void)arg;
	*(bool *)o->target = false;
	return 0;
}

int opt_str(const struct opt *o, const char *arg)
{
	*(const char **)o->target = arg;
	return 0;
}

static int parse_long(const struct opt *o, const char *arg, long *v)
{
	char *end;

	errno = 0;
	*v = strtol(arg, &end, 10);
	if (!*arg || *end || errno || *v < o->min || *v > o->max)
		return -EINVAL;
	return 0;
}

int opt_uint(const struct opt *o, const char *arg)
{
	long v;

	if (parse_long(o, arg, &v) || v < 0)
		return -EINVAL;
	*(unsigned *)o->target = (unsigned)v;
	return 0;
}

int opt_int(const struct opt *o, const char *arg)
{
	long v;

	if (parse_long(o, arg, &v))
		return -EINVAL;
	*(int *)o->target = (int)v;
	return 0;
}

int opt_double(const struct opt *o, const char *arg)
{
	char *end;
	double v = strtod(arg, &end);

	if (!*arg || *end || !(v >= 0))
		return -EINVAL;
	*(double *)o->target = v;
	return 0;
}

int opt_size(const struct opt *o, const char *arg)
{
	return parse_size(arg, o->target) ? 0 : -EINVAL;
}

int opt_list(const struct opt *o, const char *arg)
{
	struct opt_list *l = o->target;

	if (l->n >= OPT_LIST_MAX || (o->max && l->n >= (unsigned)o->max))
		return -EINVAL;
	l->v[l->n++] = arg;
	return 0;
}

int opt_sock_mode(const struct opt *o, const char *arg)
{
	return parse_socket_mode(arg, o->target) ? 0 : -EINVAL;
}

int opt_sock_group(const struct opt *o, const char *arg)
{
	return parse_socket_group(arg, o->target) ? 0 : -EINVAL;
}

static const struct opt help_opt = { "help", 'h', NULL, NULL, NULL, "this text", 0, 0 };

static int left(const struct opt *o, char *buf, size_t len)
{
	return snprintf(buf, len, "  %c%c%s--%s%s%s", o->short_name ? '-' : ' ',
			o->short_name ? o->short_name : ' ', o->short_name ? ", " : "  ", o->name,
			o->arg ? " " : "", o->arg ? o->arg : "");
}

static void usage_row(const struct opt *o, FILE *f)
{
	char buf[128];
	int n = left(o, buf, sizeof(buf));
	const char *h = o->help;

	fputs(buf, f);
	if (n >= HELP_COL)
		fprintf(f, "\n%*s", HELP_COL, "");
	else
		fprintf(f, "%*s", HELP_COL - n, "");
	for (const char *nl; (nl = strchr(h, '\n')); h = nl + 1)
		fprintf(f, "%.*s\n%*s", (int)(nl - h), h, HELP_COL, "");
	fprintf(f, "%s\n", h);
}

void opt_usage(const struct opt_cmd *c, FILE *f)
{
	fprintf(f, "%s\n%s\n\n", c->synopsis, c->summary);
	for (unsigned i = 0; i < c->nopts; i++)
		usage_row(&c->opts[i], f);
	usage_row(&help_opt, f);
	if (c->epilog)
		fprintf(f, "\n%s", c->epilog);
}

/* Builds the getopt_long array and short-option string. false when the table is too big. */
static bool build(const struct opt_cmd *c, struct option *lo, char *so)
{
	if (c->nopts >= OPT_MAX)
		return false;
	for (unsigned i = 0; i <= c->nopts; i++) {
		const struct opt *o = i < c->nopts ? &c->opts[i] : &help_opt;
		lo[i] = (struct option){ o->name, o->arg ? required_argument : no_argument, NULL,
					 o->short_name ? o->short_name : OPT_LONG0 + (int)i };
		if (o->short_name) {
			*so++ = o->short_name;
			if (o->arg)
				*so++ = ':';
		}
	}
	lo[c->nopts + 1] = (struct option){ 0 };
	*so = 0;
	return true;
}

static const struct opt *find(const struct opt_cmd *c, int val)
{
	if (val >= OPT_LONG0)
		return (unsigned)(val - OPT_LONG0) < c->nopts ? &c->opts[val - OPT_LONG0] : NULL;
	if (val == 'h')
		return &help_opt;
	for (unsigned i = 0; i < c->nopts; i++)
		if (c->opts[i].short_name == val)
			return &c->opts[i];
	return NULL;
}

int opt_parse(const struct opt_cmd *c, int argc, char **argv)
{
	struct option lo[OPT_MAX + 2];
	char so[2 * OPT_MAX + 4];
	bool help = false;
	int val;

	if (!build(c, lo, so))
		return -EINVAL;
	optind = 0; /* a full reset: vhu-fe parses a second argv */
	opterr = 1;
	while ((val = getopt_long(argc, argv, so, lo, NULL)) != -1) {
		const struct opt *o = find(c, val);
		if (val == '?' || !o)
			goto bad; /* getopt said which */
		if (o == &help_opt) {
			help = true;
			continue;
		}
		if (o->parse(o, optarg)) {
			fprintf(stderr, "%s: bad value for --%s: '%s'\n", c->prog, o->name,
				optarg ? optarg : "");
			goto bad;
		}
	}
	if (help) {
		opt_usage(c, stdout);
		return 1;
	}
	if (optind < argc) {
		fprintf(stderr, "%s: unexpected argument '%s'\n", c->prog, argv[optind]);
		goto bad;
	}
	return 0;
bad:
	fprintf(stderr, "Try '%s --help'.\n", c->prog);
	return -EINVAL;
}
