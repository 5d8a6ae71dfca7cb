/* SPDX-License-Identifier: MIT */
/* vhu-fe: a vhost front-end (vhost-user, vhost-kernel, vhost-vdpa) from a plain process. The
 * command table drives --help. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "fe.h"

int fe_verbose;

static const struct cmd *const cmds[] = { &cmd_probe, &cmd_net_bench, &cmd_blk_bench };

void fe_log(void *opaque, int level, const char *msg)
{
	(void)opaque;
	if (level > (fe_verbose ? VHU_LOG_DEBUG : VHU_LOG_WARN))
		return;
	fprintf(stderr, "vhu-fe: %s: %s\n", vhu_log_level_name(level), msg);
}

void fe_usage(FILE *f, const struct cmd *c)
{
	opt_usage(c->opts, f);
}

int fe_parse(const struct cmd *c, int argc, char **argv)
{
	int ret = opt_parse(c->opts, argc, argv);

	return ret > 0 ? 0 : ret < 0 ? 2 : -1;
}

double fe_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void fe_hist_add(struct fe_hist *h, uint64_t ns)
{
	unsigned idx;

	if (ns < 16) {
		idx = (unsigned)ns;
	} else {
		unsigned e = 63 - (unsigned)__builtin_clzll(ns); /* >= 4 */
		unsigned m = (unsigned)(ns >> (e - 4)) & 15;
		idx = (e - 3) * 16 + m;
	}
	if (idx >= sizeof(h->b) / sizeof(h->b[0]))
		idx = sizeof(h->b) / sizeof(h->b[0]) - 1;
	h->b[idx]++;
	h->count++;
}

uint64_t fe_hist_quantile(const struct fe_hist *h, double q)
{
	uint64_t want = (uint64_t)(q * (double)h->count), seen = 0;

	for (unsigned i = 0; i < sizeof(h->b) / sizeof(h->b[0]); i++) {
		seen += h->b[i];
		if (seen > want || (seen == h->count && h->count)) {
			if (i < 16)
				return i;
			unsigned e = i / 16 + 3, m = i % 16;
			return ((uint64_t)(16 + m) << (e - 4)) + ((1ull << (e - 4)) >> 1);
		}
	}
	return 0;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vhu-fe COMMAND [OPTIONS]\n"
		"A vhost front-end (\"virtio-user\") that drives a back-end from a plain process:\n"
		"vhost-user (DPDK's vhost PMD, qemu-storage-daemon, vhu-net, vhu-blk), "
		"vhost-kernel\n"
		"(/dev/vhost-net and a tap) or vhost-vdpa (/dev/vhost-vdpa-N), chosen by "
		"--path.\n\n"
		"Commands:\n");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		fprintf(f, "  %-10s %s\n", cmds[i]->name, cmds[i]->summary);
	fprintf(f, "\n'vhu-fe COMMAND --help' describes a command's options.\n");
}

int main(int argc, char **argv)
{
	if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (!strcmp(argv[1], cmds[i]->name))
			return cmds[i]->run(argc - 1, argv + 1);
	fprintf(stderr, "vhu-fe: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}
