/* SPDX-License-Identifier: MIT */
/* vhu-fe probe: what a back-end offers, by name. */
#include <errno.h>
#include <poll.h>
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

static struct {
	struct vhu_frontend_opts o;
	bool json, verbose;
	unsigned watch;
	enum fe_dev dev;
} a = { .o = { .size = VHU_FRONTEND_OPTS_SIZE,
	       .log = fe_log,
	       .log_level = VHU_LOG_DEBUG,
	       .mem_size = 1 << 20 } };

static int parse_type(const struct opt *o, const char *arg)
{
	enum fe_dev *dev = o->target;

	*dev = !strcmp(arg, "net") ? FE_DEV_NET : !strcmp(arg, "blk") ? FE_DEV_BLK : FE_DEV_UNKNOWN;
	return *dev == FE_DEV_UNKNOWN ? -EINVAL : 0;
}

static const struct opt opts[] = {
	{ "path", 'p', "PATH", opt_str, &a.o.path,
	  "the back-end: a vhost-user socket, /dev/vhost-net (vhost-kernel)\n"
	  "or /dev/vhost-vdpa-N (vhost-vdpa); the kind follows from it" },
	{ "socket-path", 's', "PATH", opt_str, &a.o.path, "the same as --path" },
	{ "server", 0, NULL, opt_flag, &a.o.server,
	  "listen on PATH and wait for the back-end to connect" },
	{ "type", 't', "net|blk", parse_type, &a.dev,
	  "device type (default: guessed from the features)" },
	{ "json", 'j', NULL, opt_flag, &a.json,
	  "one JSON object: type, features, protocol_features, queues,\n"
	  "max_mem_slots, config" },
	{ "timeout", 0, "MS", opt_int, &a.o.timeout_ms, "connect and reply timeout (default 5000)",
	  0, 1 << 30 },
	{ "watch", 'w', "SECONDS", opt_uint, &a.watch,
	  "then serve the back-end channel for SECONDS and print the\n"
	  "config again each time the back-end says it changed",
	  0, 86400 },
	{ "verbose", 'v', NULL, opt_flag, &a.verbose, "log every message" },
};

static const struct opt_cmd probe_opts = {
	.prog = "vhu-fe probe",
	.synopsis = "Usage: vhu-fe probe [OPTIONS]",
	.summary = "connect to a back-end and print what it offers",
	OPT_CMD_OPTS(opts),
};

/* The config space fields that tell most, for the device types known. 0, or 1 when a blk
 * back-end refused GET_CONFIG. */
static int print_config(struct vhu_frontend *fe, enum fe_dev dev, uint64_t pf, bool json, FILE *out)
{
	/* vhost-user: with the CONFIG protocol feature; vhost-vdpa: always (it has a device id). */
	bool has_config = (pf >> VHU_PROTO_F_CONFIG & 1) || vhu_frontend_device_id(fe) != 0;
	int ret = 0;

	if (vhu_frontend_transport(fe) == VHU_TRANSPORT_KERNEL)
		has_config = false;
	if (dev == FE_DEV_BLK && has_config) {
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
	} else if (dev == FE_DEV_NET && has_config) {
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
	return ret;
}

struct watch {
	enum fe_dev dev;
	uint64_t pf;
	unsigned changes;
};

/* BACKEND_CONFIG_CHANGE_MSG: the new config, read with GET_CONFIG. */
static void config_changed(struct vhu_frontend *fe, void *opaque)
{
	struct watch *w = opaque;

	w->changes++;
	printf("config changed (%u)\n", w->changes);
	print_config(fe, w->dev, w->pf, false, stdout);
	fflush(stdout);
}

/* --watch: serves the back-end channel for `seconds`. 0, or 1 when it failed. */
static int watch(struct vhu_frontend *fe, enum fe_dev dev, uint64_t pf, unsigned seconds)
{
	struct watch w = { dev, pf, 0 };
	double end = fe_now() + seconds;

	if (vhu_frontend_channel_fd(fe) < 0) {
		fprintf(stderr, "vhu-fe probe: --watch: the back-end offers no channel "
				"(BACKEND_REQ)\n");
		return 1;
	}
	vhu_frontend_set_config_cb(fe, config_changed, &w);
	for (double now = fe_now(); now < end; now = fe_now()) {
		struct pollfd p = { vhu_frontend_channel_fd(fe), POLLIN, 0 };
		if (poll(&p, 1, (int)((end - now) * 1000) + 1) <= 0)
			continue;
		int ret = vhu_frontend_channel_dispatch(fe);
		if (ret) {
			fprintf(stderr, "vhu-fe probe: back-end channel: %s\n", strerror(-ret));
			return 1;
		}
	}
	return 0;
}

static int run(int argc, char **argv)
{
	struct vhu_frontend_opts o;
	enum fe_dev dev;
	bool json;
	int ret = fe_parse(&cmd_probe, argc, argv);

	if (ret >= 0)
		return ret;
	o = a.o;
	dev = a.dev;
	json = a.json;
	fe_verbose = a.verbose;
	if (!o.path) {
		fprintf(stderr, "vhu-fe probe: need --path\n");
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
	uint32_t id = vhu_frontend_device_id(fe);
	if (dev == FE_DEV_UNKNOWN)
		dev = id == 1 ? FE_DEV_NET : id == 2 ? FE_DEV_BLK : fe_guess_dev(f);
	const char *type = dev == FE_DEV_NET ? "net" : dev == FE_DEV_BLK ? "blk" : "unknown";
	static const char *const kinds[] = { "auto", "vhost-user", "vhost-kernel", "vhost-vdpa" };
	const char *kind = kinds[vhu_frontend_transport(fe) & 3];
	FILE *out = stdout;
	if (json)
		fprintf(out,
			"{\n  \"transport\": \"%s\",\n  \"device_id\": %u,\n  \"type\": \"%s\",\n"
			"  \"features_hex\": \"0x%llx\",\n",
			kind, id, type, (unsigned long long)f);
	else
		fprintf(out, "%-18s%s\n%-18s%s (%s)\n%-18s0x%llx\n", "transport", kind, "device",
			type, id ? "device id" : "guessed from the features unless --type",
			"features", (unsigned long long)f);
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
	ret = print_config(fe, dev, pf, json, out);
	if (json)
		fprintf(out, "}\n");
	fflush(out);
	if (!ret && a.watch)
		ret = watch(fe, dev, vhu_frontend_protocol_features(fe), a.watch);
	vhu_frontend_close(fe);
	return ret;
}

const struct cmd cmd_probe = {
	"probe",
	run,
	"connect to a back-end and print what it offers",
	&probe_opts,
};
