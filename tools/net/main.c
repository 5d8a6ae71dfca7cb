/* SPDX-License-Identifier: MIT */
/*
 * vhu-net: a vhost-user virtio-net back-end. One port per --socket-path; a single port with
 * --loopback reflects frames, two or more ports (and --tap) form a learning switch.
 * Follows vhost-user.rst "Backend program conventions".
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "net.h"

struct net g_net;

static const struct option longopts[] = {
	{ "socket-path", required_argument, NULL, 's' },
	{ "fd", required_argument, NULL, 'f' },
	{ "client", no_argument, NULL, 'c' },
	{ "socket-mode", required_argument, NULL, 'M' },
	{ "socket-group", required_argument, NULL, 'G' },
	{ "queues", required_argument, NULL, 'q' },
	{ "loopback", no_argument, NULL, 'l' },
	{ "sink", no_argument, NULL, 'S' },
	{ "tap", required_argument, NULL, 't' },
	{ "poll", no_argument, NULL, 'p' },
	{ "poll-us", required_argument, NULL, 'u' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "print-capabilities", no_argument, NULL, 'P' },
	{ "help", no_argument, NULL, 'h' },
	{ 0 },
};

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: vhu-net [OPTIONS]\n"
		"A vhost-user virtio-net back-end: loopback reflector or L2 learning switch.\n"
		"\n"
		"  -s, --socket-path PATH   a vhost-user port on PATH (repeatable); listens unless "
		"--client\n"
		"  -f, --fd N               a port on inherited socket fd N (listening or "
		"connected)\n"
		"  -c, --client             connect to the socket paths instead, reconnecting when "
		"the\n"
		"                           front-end goes away (applies to every --socket-path)\n"
		"      --socket-mode MODE   octal mode of the listening sockets (default 0600, or\n"
		"                           0660 with --socket-group)\n"
		"      --socket-group GROUP group of the listening sockets (name or number)\n"
		"  -q, --queues N           queue pairs per port (default 1, max %d)\n"
		"  -l, --loopback           reflect every frame back (swap MAC, IPv4, L4 ports; "
		"answer\n"
		"                           ARP and ICMP echo), as testpmd's 5tswap; needs one "
		"port\n"
		"      --sink               copy out and drop every frame (benchmarks)\n"
		"  -t, --tap IFNAME         add a tap port to the switch\n"
		"  -p, --poll               busy-poll the rings instead of waiting for kicks\n"
		"      --poll-us N          after a kick, keep polling that ring for N us after "
		"its\n"
		"                           last frame before asking for kicks again (default 50;\n"
		"                           0: process each kick and wait for the next)\n"
		"  -v, --verbose            log every protocol message\n"
		"      --print-capabilities print the back-end capabilities as JSON and exit\n"
		"  -h, --help               this text\n"
		"\n"
		"Signals: SIGUSR1 prints per-queue counters; SIGTERM/SIGINT exit cleanly "
		"(counters\n"
		"are printed at exit).\n",
		NET_MAX_PAIRS);
}

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void on_signal(struct net *n, int sfd)
{
	struct signalfd_siginfo si;

	while (read(sfd, &si, sizeof(si)) == sizeof(si)) {
		if (si.ssi_signo == SIGUSR1)
			net_print_stats(n, stdout);
		else
			n->quit = true;
	}
}

static int run(struct net *n, int sfd)
{
	struct epoll_event evs[64];
	struct ev sig_ev = { EV_SIGNAL, NULL };
	struct epoll_event se = { .events = EPOLLIN, .data.ptr = &sig_ev };
	unsigned idle = 0, busy = 0;

	epoll_ctl(n->ep, EPOLL_CTL_ADD, sfd, &se);
	while (!n->quit) {
		bool need_connect = false;
		for (unsigned i = 0; i < n->nports; i++) {
			struct port *p = n->ports[i];
			if (p->kind == PORT_VHOST && p->client && !p->connected) {
				port_try_connect(n, p, now_ms());
				need_connect |= !p->connected;
			}
		}
		/* Busy-poll mode looks at the socket only every 64 empty rounds. So does a ring
		 * set up with VRING_NOFD (no kick fd: the front-end expects it to be polled): the
		 * loop never sleeps while one is started, and every port's events are still looked
		 * at every 64 rounds. */
		bool adaptive = false, nofd = false;
		unsigned polled = net_poll_all(n, &nofd);
		bool spin = n->poll || nofd;
		if (!n->poll && n->poll_ns)
			polled += net_poll_adaptive(n, &adaptive);
		net_reap(n);
		if (polled) {
			idle = 0;
			if (++busy % 64) /* events still get looked at while frames flow */
				continue;
		}
		int timeout = -1;
		if (spin || adaptive || polled)
			timeout = 0;
		else if (need_connect)
			timeout = 200;
		if ((spin || adaptive) && !polled && ++idle % 64)
			continue;
		int cnt = epoll_wait(n->ep, evs, 64, timeout);
		if (cnt < 0 && errno != EINTR)
			return -errno;
		for (int i = 0; i < cnt; i++) {
			struct ev *ev = evs[i].data.ptr;
			switch (ev->kind) {
			case EV_LISTEN:
				port_on_listen(n, ev->obj);
				break;
			case EV_CONN:
				port_on_conn(n, ev->obj);
				break;
			case EV_KICK:
				queue_on_kick(n, ev->obj);
				break;
			case EV_TAP:
				tap_on_read(n, ev->obj);
				break;
			case EV_SIGNAL:
				on_signal(n, sfd);
				break;
			}
		}
		net_reap(n);
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *paths[NET_MAX_PORTS], *taps[NET_MAX_PORTS];
	unsigned npaths = 0, ntaps = 0, pairs = 1;
	int fd = -1, c, ret = 0;
	bool client = false, sink = false, loopback = false;
	struct net *n = &g_net;
	n->poll_ns = 50000;
	n->listen = (struct listen_opts)LISTEN_OPTS_INIT;
	sigset_t mask;

	setvbuf(stdout, NULL, _IOLBF, 0);
	while ((c = getopt_long(argc, argv, "s:f:cq:lt:pvh", longopts, NULL)) != -1) {
		switch (c) {
		case 's':
			if (npaths == NET_MAX_PORTS)
				goto bad;
			paths[npaths++] = optarg;
			break;
		case 'f':
			fd = atoi(optarg);
			break;
		case 'c':
			client = true;
			break;
		case 'M':
			if (!parse_socket_mode(optarg, &n->listen.mode))
				goto bad;
			break;
		case 'G':
			if (!parse_socket_group(optarg, &n->listen.gid)) {
				fprintf(stderr, "vhu-net: unknown group %s\n", optarg);
				return 2;
			}
			break;
		case 'q':
			pairs = (unsigned)atoi(optarg);
			if (pairs < 1 || pairs > NET_MAX_PAIRS)
				goto bad;
			break;
		case 'l':
			loopback = true;
			break;
		case 'S':
			sink = true;
			break;
		case 't':
			if (ntaps == NET_MAX_PORTS)
				goto bad;
			taps[ntaps++] = optarg;
			break;
		case 'p':
			n->poll = true;
			break;
		case 'u':
			n->poll_ns = (uint64_t)atoi(optarg) * 1000;
			break;
		case 'v':
			n->verbose = 1;
			break;
		case 'P':
			printf("{\n  \"type\": \"net\",\n  \"features\": []\n}\n");
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			goto bad;
		}
	}
	if (optind < argc || (npaths == 0 && fd < 0) || (npaths && fd >= 0))
		goto bad;
	if (loopback && (npaths + ntaps + (fd >= 0) != 1 || sink)) {
		fprintf(stderr, "vhu-net: --loopback takes exactly one vhost-user port\n");
		return 2;
	}
	n->mode = sink ? MODE_SINK : loopback ? MODE_LOOPBACK : MODE_SWITCH;
	n->ep = epoll_create1(EPOLL_CLOEXEC);
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGUSR1);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	int sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
	if (n->ep < 0 || sfd < 0) {
		perror("vhu-net");
		return 1;
	}
	/* A front-end that shrinks its memory file drops its own port, not the process. */
	/* A front-end that makes its call eventfd blocking and fills it loses its connection;
	 * the thread that would write it lives on. */
	ret = vhu_eventfd_guard_install(SIGRTMIN);
	if (ret)
		fprintf(stderr,
			"vhu-net: no eventfd guard (%s): a front-end can block the notifying "
			"thread\n",
			strerror(-ret));
	ret = vhu_sigbus_guard_install();
	if (ret)
		fprintf(stderr,
			"vhu-net: no SIGBUS guard (%s): a front-end that shrinks its memory "
			"can stop every port\n",
			strerror(-ret));
	ret = 0;
	if (fd >= 0)
		ret = port_vhost_new(n, NULL, false, fd, pairs);
	for (unsigned i = 0; i < npaths && !ret; i++) {
		ret = port_vhost_new(n, paths[i], client, -1, pairs);
		if (ret == -EADDRINUSE)
			fprintf(stderr, "vhu-net: another back-end is listening on %s\n", paths[i]);
		else if (ret)
			fprintf(stderr, "vhu-net: %s: %s\n", paths[i], strerror(-ret));
	}
	for (unsigned i = 0; i < ntaps && !ret; i++) {
		ret = port_tap_new(n, taps[i]);
		if (ret)
			fprintf(stderr, "vhu-net: tap %s: %s\n", taps[i], strerror(-ret));
	}
	if (ret)
		goto out;
	fprintf(stderr, "vhu-net: %u port(s), %u queue pair(s) each, mode %s%s\n", n->nports, pairs,
		sink	   ? "sink"
		: loopback ? "loopback"
			   : "switch",
		n->poll ? ", polling" : "");
	ret = run(n, sfd);
	net_print_stats(n, stdout);
out:
	for (unsigned i = 0; i < n->nports; i++)
		port_free(n, n->ports[i]);
	close(sfd);
	close(n->ep);
	return ret ? 1 : 0;

bad:
	usage(stderr);
	return 2;
}
