/*
 * bcryptprimitives.dll for Wine 8, which lacks it: Go 1.24 and later
 * draw their random numbers from its ProcessPrng at start and die
 * without it ("bcryptprimitives.dll not found"). internal/lab builds this
 * with x86_64-w64-mingw32-gcc into each test's Wine prefix. Wine 9.0
 * and later have their own, and the harness then leaves it out.
 */
#include <windows.h>
#include <ntsecapi.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
	while (len > 0) {
		ULONG n = len > 0x10000000 ? 0x10000000 : (ULONG)len;
		if (!RtlGenRandom(data, n))
			return FALSE;
		data += n;
		len -= n;
	}
	return TRUE;
}
