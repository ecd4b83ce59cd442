/* noop_dlfunc.c — a do-nothing Exim ${dlfunc} entry point.
 *
 * Used by the end-to-end tests (as a stand-in while no real guard exists) and by the
 * whole-Exim benchmark (to measure Exim's own cost of calling a dlfunc, so the
 * guard's cost can be told apart from it).
 *
 * Contract: exports exactly one symbol, `eximguard_noop`, with Exim's dlfunc ABI
 *   int fn(uschar **yield, int argc, uschar *argv[]);
 * It ignores its arguments, sets *yield to the static string "ok" and returns
 * OK (0). It allocates nothing and makes no system call.
 *
 * Build: cc -O2 -shared -fPIC -fvisibility=hidden -o noop_dlfunc.so noop_dlfunc.c
 */

typedef unsigned char uschar;

enum { EXIM_OK = 0 }; /* Exim's OK from local_scan.h */

__attribute__((visibility("default"))) int eximguard_noop(uschar **yield, int argc, uschar *argv[])
{
  (void)argc;
  (void)argv;
  static uschar ok[] = "ok";
  *yield = ok;
  return EXIM_OK;
}
