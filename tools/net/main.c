/* SPDX-License-Identifier: MIT */
/*
 * vhu-net: a vhost-user virtio-net back-end. One port per --socket-path (and per --vduse
 * device, served to the kernel's vDPA bus); with --loopback each port reflects its own
 * frames, else two or more ports (and --tap) form a learning switch.
 * Follows vhost-user.rst "Backend program conventions".
 */
#include <errno.h>
#include <limits.h>
#include <linux/vduse.h>
#include <sys/random.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/opt.h"
#include "net.h"

#define STR_(x) #x
#define STR(x)	STR_(x)

struct args {
	struct opt_list paths, taps, vduse;
	int fd;
	unsigned pairs, poll_us, mtu, max_macs;
	bool client, loopback, sink, poll, verbose, caps, tlb_per_buffer, mac_lock;
	struct listen_opts listen;
	struct daemon_user user;
	/* --vduse, parsed once (check_args) */
	char vd_name[NET_MAX_PORTS][VDUSE_NAME_MAX];
	uint8_t vd_mac[NET_MAX_PORTS][6];
};

static struct args a = { .fd = -1,
			 .pairs = 1,
			 .poll_us = 50,
			 .mtu = 1500,
			 .max_macs = UINT_MAX,
			 .listen = LISTEN_OPTS_INIT };

static const struct opt opts[] = {
	{ "socket-path", 's', "PATH", opt_list, &a.paths,
	  "a vhost-user port on PATH (repeatable); listens unless --client", 0, NET_MAX_PORTS },
	{ "fd", 'f', "N", opt_int, &a.fd,
	  "a port on inherited socket fd N (listening or connected)", 0, 1 << 30 },
	{ "client", 'c', NULL, opt_flag, &a.client,
	  "connect to the socket paths instead, reconnecting when the\n"
	  "front-end goes away (applies to every --socket-path)" },
	{ "socket-mode", 0, "MODE", opt_sock_mode, &a.listen.mode,
	  "octal mode of the listening sockets (default 0600, or\n0660 with --socket-group)" },
	{ "socket-group", 0, "GROUP", opt_sock_group, &a.listen.gid,
	  "group of the listening sockets (name or number)" },
	{ "user", 'u', "USER[:GROUP]", opt_user, &a.user,
	  "once the ports are set up (sockets, taps, VDUSE devices),\n"
	  "run as USER (and GROUP, default USER's) for good; the\n"
	  "listening sockets are USER's" },
	{ "queues", 'q', "N", opt_uint, &a.pairs,
	  "queue pairs per vhost-user port (default 1, max " STR(NET_MAX_PAIRS) ")", 1,
	  NET_MAX_PAIRS },
	{ "loopback", 'l', NULL, opt_flag, &a.loopback,
	  "reflect every frame back (swap MAC, IPv4, L4 ports; answer\n"
	  "ARP and ICMP echo), as testpmd's 5tswap; each vhost-user\n"
	  "or VDUSE port to itself (several: a guest's migration), no tap" },
	{ "sink", 0, NULL, opt_flag, &a.sink, "copy out and drop every frame (benchmarks)" },
	{ "tap", 't', "IFNAME", opt_list, &a.taps, "add a tap port to the switch (repeatable)", 0,
	  NET_MAX_PORTS },
	{ "vduse", 0, "NAME[,mac=MAC]", opt_list, &a.vduse,
	  "a port served to the kernel's vDPA bus as the VDUSE device\n"
	  "NAME (/dev/vduse/NAME; then `vdpa dev add name NAME mgmtdev\n"
	  "vduse`): one queue pair, no control queue; its MAC is MAC,\n"
	  "or 02:76:64 and a hash of NAME (repeatable)",
	  0, NET_MAX_PORTS },
	{ "mac-lock", 0, NULL, opt_flag, &a.mac_lock,
	  "switch: a MAC learned on a port stays there while the port is\n"
	  "up (a front-end connected, a VDUSE driver not reset); frames\n"
	  "from other ports with it as source are dropped, and\n"
	  "SEND_RARP moves it only from a stopped device" },
	{ "max-macs", 0, "N", opt_uint, &a.max_macs,
	  "with --mac-lock: MACs each vhost-user or VDUSE port may learn\n"
	  "(default 16; 0: no limit); frames from a new MAC past it are\n"
	  "dropped",
	  0, FDB_SIZE },
	{ "mtu", 'm', "BYTES", opt_uint, &a.mtu,
	  "the MTU the ports' guests are given (VIRTIO_NET_F_MTU) and\n"
	  "the taps are set to (default 1500, 68 to " STR(NET_MAX_MTU) ")",
	  68, NET_MAX_MTU },
	{ "poll", 'p', NULL, opt_flag, &a.poll,
	  "busy-poll the rings instead of waiting for kicks" },
	{ "poll-us", 0, "N", opt_uint, &a.poll_us,
	  "after a kick, keep polling that ring for N us after its\n"
	  "last frame before asking for kicks again (default 50;\n"
	  "0: process each kick and wait for the next)",
	  0, 1000000 },
	{ "iotlb-per-buffer", 0, NULL, opt_flag, &a.tlb_per_buffer,
	  "ACCESS_PLATFORM: ask the front-end again for every buffer's mappings (QEMU 7.2 "
	  "guests booted intel_iommu=on)" },
	{ "verbose", 'v', NULL, opt_flag, &a.verbose, "log every protocol message" },
	{ "print-capabilities", 0, NULL, opt_flag, &a.caps,
	  "print the back-end capabilities as JSON and exit" },
};

static const struct opt_cmd cmd = {
	.prog = "vhu-net",
	.synopsis = "Usage: vhu-net [OPTIONS]",
	.summary = "A vhost-user virtio-net back-end: loopback reflector or L2 learning switch.",
	OPT_CMD_OPTS(opts),
	.epilog = "Signals: SIGUSR1 prints per-queue counters; SIGTERM/SIGINT exit cleanly "
		  "(counters\nare printed at exit); SIGHUP is ignored.\n",
};

/* vhost-user.rst "Backend program conventions": the net type has no features to list. */
static void print_capabilities(void)
{
	printf("{\n  \"type\": \"net\",\n  \"features\": []\n}\n");
}

/* The options that need each other. 0, or 2 (the exit status) after saying why. */
static int check_args(void)
{
	if ((a.paths.n == 0 && a.fd < 0 && a.vduse.n == 0) || (a.paths.n && a.fd >= 0)) {
		fprintf(stderr, "vhu-net: one of --socket-path or --fd (or --vduse)\n");
		opt_usage(&cmd, stderr);
		return 2;
	}
	/* Several loopback ports reflect each to itself: a migrating guest's source and
	 * destination VMM on one vhu-net. */
	if (a.loopback && (a.taps.n || a.sink)) {
		fprintf(stderr, "vhu-net: --loopback takes vhost-user and VDUSE ports, no tap\n");
		return 2;
	}
	if (a.mac_lock && (a.loopback || a.sink)) {
		fprintf(stderr,
			"vhu-net: --mac-lock is for the switch (not --loopback or --sink)\n");
		return 2;
	}
	if (a.max_macs != UINT_MAX && !a.mac_lock) {
		fprintf(stderr, "vhu-net: --max-macs applies with --mac-lock only\n");
		return 2;
	}
	if (a.max_macs == UINT_MAX)
		a.max_macs = 16;
	/* Every --vduse checked before anything is created: a name or MAC given twice would
	 * fail (or, with --mac-lock, refuse one port's frames) only once the first exists. */
	for (unsigned i = 0; i < a.vduse.n; i++) {
		if (port_vduse_arg(a.vduse.v[i], a.vd_name[i], VDUSE_NAME_MAX, a.vd_mac[i])) {
			fprintf(stderr,
				"vhu-net: --vduse %s: refused: NAME[,mac=MAC] with a NAME of 1 to "
				"%d "
				"bytes (no '/', ',', space or control character; not . or ..) and "
				"a "
				"unicast MAC written like 02:00:00:00:00:01\n",
				a.vduse.v[i], VDUSE_NAME_MAX - 1);
			return 2;
		}
		for (unsigned j = 0; j < i; j++) {
			bool same_name = !strcmp(a.vd_name[i], a.vd_name[j]);
			if (!same_name && memcmp(a.vd_mac[i], a.vd_mac[j], 6))
				continue;
			fprintf(stderr,
				"vhu-net: --vduse %s: refused: the same %s as --vduse %s%s\n",
				a.vduse.v[i], same_name ? "name" : "MAC", a.vduse.v[j],
				same_name ? "" : " (give each its own ,mac=)");
			return 2;
		}
	}
	if (a.paths.n + (a.fd >= 0) + a.vduse.n + a.taps.n > NET_MAX_PORTS) {
		fprintf(stderr, "vhu-net: at most %d ports (--socket-path, --fd, --vduse, --tap)\n",
			NET_MAX_PORTS);
		return 2;
	}
	return 0;
}

static void stats(void *dev)
{
	net_print_stats(dev, stdout);
}

/* Before each wait: --client connects, then one round of ring polling. Returns the wait's
 * timeout, or DLOOP_AGAIN to poll again without waiting. */
static int idle(void *dev)
{
	struct net *n = dev;
	bool need_connect = net_try_connect(n);
	/* Busy-poll mode looks at the sockets only every 64 empty rounds. So does a ring set up
	 * with VRING_NOFD (no kick fd: the front-end expects it to be polled): the loop never
	 * sleeps while one is started, and every port's events are still looked at every 64
	 * rounds. */
	bool adaptive = false, nofd = false, nofd_nap = false;
	unsigned polled = net_poll_all(n, &nofd);
	/* A NOFD ring idle for longer than the polling window (at least 1 ms) is looked at once
	 * a millisecond instead: an idle front-end cannot hold a CPU at 100 %, and a burst after
	 * silence waits at most 1 ms. --poll spins regardless. */
	if (nofd && !n->poll) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t now = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		uint64_t window = n->poll_ns > 1000000 ? n->poll_ns : 1000000;
		if (polled || !n->nofd_idle_since)
			n->nofd_idle_since = polled ? 0 : now;
		else if (now - n->nofd_idle_since > window)
			nofd_nap = true;
	}
	bool spin = n->poll || (nofd && !nofd_nap);

	if (!n->poll)
		polled += net_poll_adaptive(n, &adaptive);
	net_reap(n);
	if (polled) {
		n->poll_idle = 0;
		if (++n->poll_busy % 64) /* events still get looked at while frames flow */
			return DLOOP_AGAIN;
	}
	if ((spin || adaptive) && !polled && ++n->poll_idle % 64)
		return DLOOP_AGAIN;
	if (spin || adaptive || polled)
		return 0;
	if (nofd_nap)
		return 1;
	return need_connect ? 200 : -1;
}

static void after(void *dev)
{
	net_reap(dev);
}

static int add_ports(struct net *n)
{
	int ret = 0;

	if (a.fd >= 0)
		ret = port_vhost_new(n, NULL, false, a.fd, a.pairs);
	for (unsigned i = 0; i < a.paths.n && !ret; i++) {
		ret = port_vhost_new(n, a.paths.v[i], a.client, -1, a.pairs);
		if (ret == -EADDRINUSE)
			fprintf(stderr, "vhu-net: another back-end is listening on %s\n",
				a.paths.v[i]);
		else if (ret)
			fprintf(stderr, "vhu-net: %s: %s\n", a.paths.v[i], strerror(-ret));
	}
	for (unsigned i = 0; i < a.vduse.n && !ret; i++) {
		ret = port_vduse_new(n, a.vd_name[i], a.vd_mac[i]);
		if (ret)
			fprintf(stderr, "vhu-net: VDUSE device %s: %s%s\n", a.vd_name[i],
				strerror(-ret),
				ret == -ENODEV ? " (no /dev/vduse/control: modprobe vduse)" : "");
	}
	for (unsigned i = 0; i < a.taps.n && !ret; i++) {
		ret = port_tap_new(n, a.taps.v[i]);
		if (ret)
			fprintf(stderr, "vhu-net: tap %s: %s\n", a.taps.v[i], strerror(-ret));
	}
	return ret;
}

static int serve(struct net *n)
{
	int ret = dloop_init(&n->loop);

	if (ret) {
		fprintf(stderr, "vhu-net: %s\n", strerror(-ret));
		return 1;
	}
	n->loop.dev = n;
	n->loop.stats = stats;
	n->loop.idle = idle;
	n->loop.after = after;
	ret = add_ports(n);
	if (ret == 0) {
		ret = daemon_setup_done("vhu-net", &a.user);
		n->unprivileged = a.user.set;
	}
	if (ret == 0) {
		unsigned nvhost = a.paths.n + (a.fd >= 0);
		fprintf(stderr,
			"vhu-net: %u port(s) (%u vhost-user with %u queue pair(s) each, %u VDUSE, "
			"%u tap), mode %s%s\n",
			n->nports, nvhost, a.pairs, a.vduse.n, a.taps.n,
			n->mode == MODE_SINK	   ? "sink"
			: n->mode == MODE_LOOPBACK ? "loopback"
						   : "switch",
			n->poll ? ", polling" : "");
		ret = dloop_run(&n->loop);
		net_print_stats(n, stdout);
	}
	for (unsigned i = 0; i < n->nports; i++)
		port_free(n, n->ports[i]);
	dloop_fini(&n->loop);
	return ret ? 1 : 0;
}

int main(int argc, char **argv)
{
	struct net *n;
	int ret;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (daemon_wants_capabilities(argc, argv)) {
		print_capabilities();
		return 0;
	}
	ret = opt_parse(&cmd, argc, argv);
	if (ret)
		return ret > 0 ? 0 : 2;
	ret = check_args();
	if (ret == 0)
		ret = daemon_user_prepare("vhu-net", &a.user, &a.listen);
	if (ret)
		return ret;
	n = aligned_alloc(_Alignof(struct net), sizeof(*n)); /* frame[] is cache-line aligned */
	if (!n) {
		perror("vhu-net");
		return 1;
	}
	memset(n, 0, sizeof(*n));
	n->mode = a.sink ? MODE_SINK : a.loopback ? MODE_LOOPBACK : MODE_SWITCH;
	n->poll = a.poll;
	n->mtu = a.mtu;
	n->poll_ns = (uint64_t)a.poll_us * 1000;
	n->listen = a.listen;
	n->verbose = a.verbose;
	n->tlb_per_buffer = a.tlb_per_buffer;
	/* The learning table's buckets: a guest must not be able to tell which MACs share one. */
	if (getrandom(&n->fdb.seed, sizeof(n->fdb.seed), GRND_NONBLOCK) != sizeof(n->fdb.seed))
		n->fdb.seed =
			(uint64_t)daemon_now_ms() * 0x9e3779b97f4a7c15ull ^ (uint64_t)getpid();
	n->fdb.lock = a.mac_lock;
	n->fdb.max_macs = a.max_macs;
	ret = serve(n);
	free(n);
	return ret;
}
