/* SPDX-License-Identifier: MIT */
/* vhu-fe probe: what a back-end offers, by name. */
#include <getopt.h>
#include <stdlib.h>
#include <linux/virtio_blk.h>
#include <linux/virtio_net.h>
#include <stddef.h>
#include <string.h>

#include "fe.h"

static void print_bits(FILE *f, bool json, const char *key, uint64_t v, enum fe_dev dev,
		       bool protocol)
{
	bool first = true;

	fprintf(f, json ? "  \"%s\": [" : "%-18s", key);
	for (unsigned b = 0; b < 64; b++) {
		if (!(v >> b & 1))
			continue;
		const char *n = protocol ? vhu_protocol_feature_name(b) : fe_feature_name(dev, b);
		char unk[16];
		if (!n) {
			snprintf(unk, sizeof(unk), "BIT_%u", b);
			n = unk;
		}
		fprintf(f, json ? "%s\"%s\"" : "%s%s", first ? "" : json ? ", " : " ", n);
		first = false;
	}
	fprintf(f, json ? "],\n" : "\n");
}

static int run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "socket-path", required_argument, NULL, 's' },
		{ "server", no_argument, NULL, 'S' },
		{ "type", required_argument, NULL, 't' },
		{ "json", no_argument, NULL, 'j' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct vhu_frontend_opts o = { .log = fe_log,
				       .log_level = VHU_LOG_DEBUG,
				       .mem_size = 1 << 20 };
	bool json = false;
	enum fe_dev dev = FE_DEV_UNKNOWN;
	int c, ret;

	while ((c = getopt_long(argc, argv, "s:t:jvh", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			o.path = optarg;
			break;
		case 'S':
			o.server = true;
			break;
		case 't':
			dev = !strcmp(optarg, "net")   ? FE_DEV_NET
			      : !strcmp(optarg, "blk") ? FE_DEV_BLK
						       : FE_DEV_UNKNOWN;
			break;
		case 'j':
			json = true;
			break;
		case 'T':
			o.timeout_ms = atoi(optarg);
			break;
		case 'v':
			fe_verbose = 1;
			break;
		case 'h':
			fe_usage(stdout, &cmd_probe);
			return 0;
		default:
			fe_usage(stderr, &cmd_probe);
			return 2;
		}
	}
	if (!o.path) {
		fe_usage(stderr, &cmd_probe);
		return 2;
	}
	struct vhu_frontend *fe;
	ret = vhu_frontend_open(&fe, &o);
	if (ret) {
		fprintf(stderr, "vhu-fe probe: %s: %s\n", o.path, strerror(-ret));
		return 1;
	}
	uint64_t f = vhu_frontend_device_features(fe);
	uint64_t pf = vhu_frontend_device_protocol_features(fe);
	if (dev == FE_DEV_UNKNOWN)
		dev = fe_guess_dev(f);
	const char *type = dev == FE_DEV_NET ? "net" : dev == FE_DEV_BLK ? "blk" : "unknown";
	FILE *out = stdout;
	if (json)
		fprintf(out, "{\n  \"type\": \"%s\",\n  \"features_hex\": \"0x%llx\",\n", type,
			(unsigned long long)f);
	else
		fprintf(out, "%-18s%s (guessed from the features unless --type)\n%-18s0x%llx\n",
			"device", type, "features", (unsigned long long)f);
	print_bits(out, json, json ? "features" : "", f, dev, false);
	if (json)
		fprintf(out, "  \"protocol_features_hex\": \"0x%llx\",\n", (unsigned long long)pf);
	else
		fprintf(out, "%-18s0x%llx\n", "protocol features", (unsigned long long)pf);
	print_bits(out, json, json ? "protocol_features" : "", pf, dev, true);
	if (json)
		fprintf(out, "  \"queues\": %u,\n  \"max_mem_slots\": %u,\n",
			vhu_frontend_queue_num(fe), vhu_frontend_max_mem_slots(fe));
	else
		fprintf(out, "%-18s%u\n%-18s%u\n", "queues", vhu_frontend_queue_num(fe),
			"max mem slots", vhu_frontend_max_mem_slots(fe));
	ret = 0;
	if (dev == FE_DEV_BLK && (pf >> VHU_PROTO_F_CONFIG & 1)) {
		struct virtio_blk_config cfg;
		memset(&cfg, 0, sizeof(cfg));
		/* Up to num_queues: older back-ends refuse reads past what they know. */
		int r = vhu_frontend_get_config(fe, 0, &cfg,
						offsetof(struct virtio_blk_config, num_queues) + 2);
		if (r) {
			fprintf(stderr, "vhu-fe probe: GET_CONFIG: %s\n", strerror(-r));
			ret = 1;
		} else if (json) {
			fprintf(out,
				"  \"config\": {\"capacity\": %llu, \"blk_size\": %u, "
				"\"num_queues\": %u, \"seg_max\": %u, \"size_max\": %u}\n",
				(unsigned long long)cfg.capacity, cfg.blk_size, cfg.num_queues,
				cfg.seg_max, cfg.size_max);
		} else {
			fprintf(out,
				"%-18s%llu sectors (%llu "
				"MiB)\n%-18s%u\n%-18s%u\n%-18s%u\n%-18s%u\n",
				"capacity", (unsigned long long)cfg.capacity,
				(unsigned long long)(cfg.capacity >> 11), "blk_size", cfg.blk_size,
				"num_queues", cfg.num_queues, "seg_max", cfg.seg_max, "size_max",
				cfg.size_max);
		}
	} else if (dev == FE_DEV_NET && (pf >> VHU_PROTO_F_CONFIG & 1)) {
		struct virtio_net_config cfg;
		memset(&cfg, 0, sizeof(cfg));
		int r = vhu_frontend_get_config(fe, 0, &cfg,
						offsetof(struct virtio_net_config, mtu) + 2);
		if (r == 0 && json)
			fprintf(out,
				"  \"config\": {\"mac\": \"%02x:%02x:%02x:%02x:%02x:%02x\", "
				"\"status\": %u, \"max_virtqueue_pairs\": %u, \"mtu\": %u}\n",
				cfg.mac[0], cfg.mac[1], cfg.mac[2], cfg.mac[3], cfg.mac[4],
				cfg.mac[5], cfg.status, cfg.max_virtqueue_pairs, cfg.mtu);
		else if (r == 0)
			fprintf(out, "%-18s%02x:%02x:%02x:%02x:%02x:%02x\n%-18s%u\n%-18s%u\n",
				"mac", cfg.mac[0], cfg.mac[1], cfg.mac[2], cfg.mac[3], cfg.mac[4],
				cfg.mac[5], "max queue pairs", cfg.max_virtqueue_pairs, "mtu",
				cfg.mtu);
		else if (json)
			fprintf(out, "  \"config\": {}\n");
	} else if (json) {
		fprintf(out, "  \"config\": {}\n");
	}
	if (json)
		fprintf(out, "}\n");
	vhu_frontend_close(fe);
	return ret;
}

const struct cmd cmd_probe = {
	"probe",
	run,
	"connect to a back-end and print what it offers",
	"  -s, --socket-path PATH  the back-end's socket\n"
	"      --server            listen on PATH and wait for the back-end to connect\n"
	"  -t, --type net|blk      device type (default: guessed from the features)\n"
	"  -j, --json              one JSON object: type, features, protocol_features, queues,\n"
	"                          max_mem_slots, config\n"
	"      --timeout MS        connect and reply timeout (default 5000)\n"
	"  -v, --verbose           log every message\n",
};
