/*
 * bench-client: the tiny reader used by the bench (scripts/bench/, compiled at run time).
 *
 * Every measured operation is open(O_RDONLY) + read() until EOF + close(),
 * with one buffer of BUFSIZE bytes, exactly what a simple program such as
 * cat(1) does.  The same binary reads lxcfs-ts, lxcfs and the host's /proc,
 * so the client cost is identical for all of them.
 *
 * Before doing any work the client prints "ready\n" and waits for one line
 * on stdin: the bench moves it into the limited cgroups in between and then
 * writes "go\n" (or "skip\n" to make it exit).
 *
 * Every mode first joins the cgroups whose cgroup.procs files are listed,
 * colon-separated, in $BENCH_CGROUP_PROCS, if that is set.  With
 * $BENCH_PIDNS=1, the modes that wait for "go" then do their work as pid 1 of
 * a new pid namespace, as a container's process would: the daemons then
 * resolve the caller through its namespace's init, as they do in containers.
 *
 * Modes (all times from clock_gettime(CLOCK_MONOTONIC), in ns):
 *   lat  ITERS CHUNK WARMUP PATH...
 *        interleaved rounds: each round reads every PATH CHUNK times, the
 *        starting path rotating by one each round, until every path has been
 *        read ITERS times.  WARMUP untimed reads of each path first.
 *        Output: "bytes IDX N" for each path (size of the first read-to-EOF),
 *        then "lat IDX t1 t2 ..." with the ITERS per-iteration ns for each.
 *   tput SECONDS PATH
 *        reads PATH in a loop for SECONDS.  Output: "tput COUNT ELAPSED_NS".
 *   count N PATH [MAXSECONDS]
 *        reads PATH N times, or as many as fit in MAXSECONDS.  Output: "count DONE ELAPSED_NS".
 *   dump PATH...
 *        reads each PATH once.  Output per path: "== IDX BYTES\n" and the content.
 *   noise PROCS SECONDS SLEEP_US PATH
 *        a noisy neighbour: PROCS processes each read PATH one byte per read()
 *        with SLEEP_US between reads, for SECONDS.  Output: "noise done".
 *   turns PATH...
 *        a long-lived simulated container (scale phase).  Before "ready" it
 *        joins the cgroups whose cgroup.procs files are listed, colon-separated,
 *        in $BENCH_CGROUP_PROCS (writing 0: itself, which also works from
 *        inside a pid namespace).  No "go" line: it then obeys one command per
 *        stdin line until "quit" or EOF:
 *          "go R"    one turn: every PATH once, in order (reversed when R is 1);
 *                    output "t NS..." with the times in PATH order
 *          "dump P"  output "== P BYTES\n" and the content of PATH number P
 *
 * Any failure prints one line on stderr and exits 2.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <time.h>
#include <sys/wait.h>
#include <unistd.h>

#define BUFSIZE 65536

static char buf[BUFSIZE];

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what, const char *path)
{
	fprintf(stderr, "bench-client: %s %s: %s\n", what, path, strerror(errno));
	exit(2);
}

/* open + read to EOF + close; returns the number of bytes read */
static long read_file(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open", path);
	long total = 0;
	for (;;) {
		ssize_t n = read(fd, buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			die("read", path);
		}
		if (n == 0)
			break;
		total += n;
		if (total > (64l << 20)) {
			fprintf(stderr, "bench-client: %s: no EOF after %ld bytes\n", path, total);
			exit(2);
		}
	}
	if (close(fd) < 0)
		die("close", path);
	return total;
}

static void join_cgroups(void);

/* Continues as pid 1 of a new pid namespace; the parent only waits and passes the exit status on. */
static void enter_pid_namespace(void)
{
	int status;
	fflush(stdout);
	if (unshare(CLONE_NEWPID) != 0)
		die("unshare(CLONE_NEWPID)", "");
	pid_t child = fork();
	if (child < 0)
		die("fork", "");
	if (child == 0)
		return;
	if (waitpid(child, &status, 0) != child)
		die("waitpid", "");
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 2);
}

/* Joins the cgroups of $BENCH_CGROUP_PROCS if set, says "ready", waits for "go". */
static void wait_go(void)
{
	char line[64];
	join_cgroups();
	fputs("ready\n", stdout);
	fflush(stdout);
	if (!fgets(line, sizeof(line), stdin) || strncmp(line, "go", 2) != 0)
		exit(3);
	if (getenv("BENCH_PIDNS") && strcmp(getenv("BENCH_PIDNS"), "1") == 0)
		enter_pid_namespace();
}

static long arg_long(const char *s)
{
	char *end;
	errno = 0;
	long v = strtol(s, &end, 10);
	if (errno || *end || v < 0) {
		fprintf(stderr, "bench-client: bad number %s\n", s);
		exit(2);
	}
	return v;
}

static int mode_lat(int argc, char **argv)
{
	if (argc < 6)
		return 1;
	long iters = arg_long(argv[2]), chunk = arg_long(argv[3]), warm = arg_long(argv[4]);
	int npaths = argc - 5;
	char **paths = argv + 5;
	if (chunk < 1)
		chunk = 1;
	uint64_t *t = calloc((size_t)npaths * (size_t)iters + 1, sizeof(uint64_t));
	long *bytes = calloc((size_t)npaths, sizeof(long));
	if (!t || !bytes) {
		fputs("bench-client: out of memory\n", stderr);
		return 2;
	}
	wait_go();
	for (int p = 0; p < npaths; p++) {
		bytes[p] = read_file(paths[p]);
		for (long w = 0; w < warm; w++)
			read_file(paths[p]);
	}
	long done = 0; /* iterations done for every path */
	for (long round = 0; done < iters; round++) {
		long n = iters - done < chunk ? iters - done : chunk;
		for (int k = 0; k < npaths; k++) {
			int p = (int)((k + round) % npaths);
			uint64_t *out = t + (size_t)p * (size_t)iters + (size_t)done;
			const char *path = paths[p];
			for (long i = 0; i < n; i++) {
				uint64_t a = now_ns();
				read_file(path);
				out[i] = now_ns() - a;
			}
		}
		done += n;
	}
	for (int p = 0; p < npaths; p++)
		printf("bytes %d %ld\n", p, bytes[p]);
	for (int p = 0; p < npaths; p++) {
		printf("lat %d", p);
		for (long i = 0; i < iters; i++)
			printf(" %llu", (unsigned long long)t[(size_t)p * (size_t)iters + (size_t)i]);
		putchar('\n');
	}
	return 0;
}

static int mode_tput(int argc, char **argv)
{
	if (argc != 4)
		return 1;
	double secs = atof(argv[2]);
	const char *path = argv[3];
	uint64_t limit = (uint64_t)(secs * 1e9);
	wait_go();
	uint64_t start = now_ns(), el;
	long count = 0;
	do {
		read_file(path);
		count++;
		el = now_ns() - start;
	} while (el < limit);
	printf("tput %ld %llu\n", count, (unsigned long long)el);
	return 0;
}

static int mode_count(int argc, char **argv)
{
	if (argc != 4 && argc != 5)
		return 1;
	long n = arg_long(argv[2]);
	const char *path = argv[3];
	uint64_t limit = argc == 5 ? (uint64_t)(atof(argv[4]) * 1e9) : UINT64_MAX;
	wait_go();
	uint64_t start = now_ns();
	long i;
	for (i = 0; i < n; i++) {
		if ((i & 255) == 0 && now_ns() - start > limit)
			break;
		read_file(path);
	}
	printf("count %ld %llu\n", i, (unsigned long long)(now_ns() - start));
	return 0;
}

/* "== INDEX BYTES\n" and the content of one file */
static void dump_file(int index, const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		die("open", path);
	size_t len = 0;
	ssize_t n;
	while ((n = read(fd, buf + len, sizeof(buf) - len)) > 0)
		len += (size_t)n;
	if (n < 0)
		die("read", path);
	close(fd);
	printf("== %d %zu\n", index, len);
	fwrite(buf, 1, len, stdout);
}

static int mode_dump(int argc, char **argv)
{
	if (argc < 3)
		return 1;
	wait_go();
	for (int p = 2; p < argc; p++)
		dump_file(p - 2, argv[p]);
	return 0;
}

static void join_cgroups(void)
{
	const char *list = getenv("BENCH_CGROUP_PROCS");
	if (!list || !*list)
		return;
	char *copy = strdup(list);
	for (char *file = strtok(copy, ":"); file; file = strtok(NULL, ":")) {
		int fd = open(file, O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, "0", 1) != 1)
			die("join cgroup", file);
		close(fd);
	}
	free(copy);
}

static int mode_turns(int argc, char **argv)
{
	if (argc < 3)
		return 1;
	int npaths = argc - 2;
	char **paths = argv + 2;
	uint64_t *t = calloc((size_t)npaths, sizeof(uint64_t));
	if (!t) {
		fputs("bench-client: out of memory\n", stderr);
		return 2;
	}
	join_cgroups();
	fputs("ready\n", stdout);
	fflush(stdout);
	char line[64];
	while (fgets(line, sizeof(line), stdin)) {
		if (strncmp(line, "go ", 3) == 0) {
			int reversed = atoi(line + 3) == 1;
			for (int k = 0; k < npaths; k++) {
				int p = reversed ? npaths - 1 - k : k;
				uint64_t a = now_ns();
				read_file(paths[p]);
				t[p] = now_ns() - a;
			}
			fputs("t", stdout);
			for (int p = 0; p < npaths; p++)
				printf(" %llu", (unsigned long long)t[p]);
			putchar('\n');
		} else if (strncmp(line, "dump ", 5) == 0) {
			int p = atoi(line + 5);
			if (p < 0 || p >= npaths)
				return 2;
			dump_file(p, paths[p]);
		} else {
			break; /* "quit" */
		}
		fflush(stdout);
	}
	return 0;
}

/*
 * A noisy neighbour: PROCS processes, each reading PATH one byte per read()
 * (one FUSE request each), sleeping SLEEP_US between reads, for SECONDS.
 */
static int mode_noise(int argc, char **argv)
{
	if (argc != 6)
		return 1;
	long procs = arg_long(argv[2]);
	double secs = atof(argv[3]);
	long sleep_us = arg_long(argv[4]);
	const char *path = argv[5];
	wait_go();
	uint64_t end = now_ns() + (uint64_t)(secs * 1e9);
	for (long p = 0; p < procs; p++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork", path);
		if (pid > 0)
			continue;
		char byte;
		while (now_ns() < end) {
			int fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				die("open", path);
			while (read(fd, &byte, 1) == 1 && now_ns() < end)
				usleep((useconds_t)sleep_us);
			close(fd);
		}
		_exit(0);
	}
	while (wait(NULL) > 0)
		;
	printf("noise done\n");
	return 0;
}

int main(int argc, char **argv)
{
	int rc = 1;
	if (argc >= 2 && strcmp(argv[1], "lat") == 0)
		rc = mode_lat(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "tput") == 0)
		rc = mode_tput(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "count") == 0)
		rc = mode_count(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "dump") == 0)
		rc = mode_dump(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "turns") == 0)
		rc = mode_turns(argc, argv);
	else if (argc >= 2 && strcmp(argv[1], "noise") == 0)
		rc = mode_noise(argc, argv);
	if (rc == 1)
		fputs("usage: bench-client lat ITERS CHUNK WARMUP PATH... | tput SECONDS PATH | count N PATH [MAXSECONDS] | dump PATH... | turns PATH... | noise PROCS SECONDS SLEEP_US PATH\n", stderr);
	fflush(stdout);
	return rc;
}
