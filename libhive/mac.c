/* mac — the one MAC normaliser: a miner's identity is its MAC, written one
 * way everywhere (lower case, colons). */
#include "hive/mac.h"

#include <ctype.h>
#include <stddef.h>

static int hexval(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

int hive_mac_normalise(const char *in, char out[HIVE_MAC_LEN])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char b[6];
	char sep = 0;
	size_t i = 0;

	if (!in)
		return -1;
	for (int k = 0; k < 6; k++) {
		int hi = hexval((unsigned char)in[i]), lo;

		if (hi < 0)
			return -1;
		lo = hexval((unsigned char)in[i + 1]);
		if (lo < 0)
			return -1;
		b[k] = (unsigned char)(hi << 4 | lo);
		i += 2;
		if (k == 5)
			break;
		if (in[i] != ':' && in[i] != '-')
			return -1;
		if (sep && in[i] != sep)
			return -1;
		sep = in[i++];
	}
	if (in[i] != '\0')
		return -1;
	for (int k = 0; k < 6; k++) {
		out[k * 3] = hex[b[k] >> 4];
		out[k * 3 + 1] = hex[b[k] & 15];
		out[k * 3 + 2] = k == 5 ? '\0' : ':';
	}
	return 0;
}
