/* test_browser — runs the dashboard's browser test
 * (tests/browser/dashboard.test.mjs: Debian's chromium driven by
 * playwright-core against the stack etc/run.sh starts) as part of
 * `make test`.
 *
 * The script prints cmocka-style lines itself ("[  PASSED  ] N test(s).",
 * "[  FAILED  ] N test(s), listed below:"), so this program checks what the
 * script needs, installs playwright-core from the lockfile when it is
 * missing (npm ci), and then becomes the script (exec): tests/run.sh counts
 * the script's own results. A missing prerequisite is a failure with the
 * command that fixes it, never a silent skip. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DIR_      "tests/browser"
#define SCRIPT    DIR_ "/dashboard.test.mjs"
#define PW_MODULE DIR_ "/node_modules/playwright-core/package.json"

static int refuse(const char *why, const char *fix)
{
	printf("[==========] Running 1 test(s).\n");
	printf("[ RUN      ] dashboard browser test\n");
	printf("[  ERROR   ] --- %s\n    fix: %s\n", why, fix);
	printf("[  FAILED  ] dashboard browser test\n");
	printf("[==========] 1 test(s) run.\n");
	printf("[  PASSED  ] 0 test(s).\n");
	printf("[  FAILED  ] 1 test(s), listed below:\n");
	printf("[  FAILED  ] dashboard browser test\n");
	return 1;
}

/* The node on PATH, at least major version 20 (playwright-core's floor). */
static int node_ok(char *ver, size_t len)
{
	FILE *p = popen("node --version 2>/dev/null", "r");
	int major = 0;

	ver[0] = '\0';
	if (!p)
		return 0;
	if (fgets(ver, (int)len, p))
		ver[strcspn(ver, "\n")] = '\0';
	pclose(p);
	if (ver[0] == 'v')
		major = atoi(ver + 1);
	return major >= 20;
}

int main(void)
{
	const char *chromium = getenv("CHROMIUM") ? getenv("CHROMIUM") : "/usr/bin/chromium";
	char ver[64];
	struct stat st;

	setvbuf(stdout, NULL, _IONBF, 0);
	if (stat(SCRIPT, &st) != 0)
		return refuse("run from the top of the tree: " SCRIPT " not found", "cd to the checkout");
	if (access(chromium, X_OK) != 0)
		return refuse("chromium is not installed", "apt-get install -y chromium");
	if (!node_ok(ver, sizeof(ver)))
		return refuse(ver[0] ? "node is older than 20" : "node is not installed",
			      "install Node.js 20 or later with npm");
	if (stat(PW_MODULE, &st) != 0) {
		int rc;

		printf("test_browser: installing playwright-core from %s/package-lock.json\n", DIR_);
		rc = system("npm ci --prefix " DIR_ " --no-audit --no-fund --loglevel=error");
		if (rc != 0 || stat(PW_MODULE, &st) != 0)
			return refuse("npm ci failed in " DIR_, "cd " DIR_ " && npm ci");
	}
	execlp("node", "node", SCRIPT, (char *)NULL);
	return refuse(strerror(errno), "check that node runs");
}
