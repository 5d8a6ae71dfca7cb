/* SPDX-License-Identifier: MIT */
/* vhu_version(): the library's version is meson's project version (argv[1]) and agrees with
 * the header's VHU_VERSION_MAJOR/MINOR. */
#include <vhu/vhu.h>

#include "t.h"

T_DEFINE;

static const char *want;

static int version(void)
{
	char prefix[32];

	ASSERT_TRUE(vhu_version() != NULL);
	ASSERT_OK(strcmp(vhu_version(), want));
	ASSERT_EQ(vhu_version_major(), VHU_VERSION_MAJOR);
	ASSERT_EQ(vhu_version_minor(), VHU_VERSION_MINOR);
	snprintf(prefix, sizeof(prefix), "%d.%d.", VHU_VERSION_MAJOR, VHU_VERSION_MINOR);
	ASSERT_OK(strncmp(vhu_version(), prefix, strlen(prefix)));
	return 0;
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return T_FAIL;
	want = argv[1];
	RUN(version);
	T_MAIN_END();
}
