/* fe_limits.h — every limit of the frontend, with the error it gives.
 *
 * A .dal program runs at compile time (loops unroll, calls inline, lists
 * and strings are built), so a hostile or mistaken source could otherwise
 * read without end, loop for ever, exhaust memory or overflow the C stack.
 * Each limit below turns that into a located error ("file:line:col: error:
 * ..."). FE_MSG_* is the message (a printf format; its arguments are listed
 * beside it). docs/language.md ("Limits") has the same table.
 *
 * Prefix: FE_MAX_ (the limit), FE_MSG_ (its message).
 */
#ifndef DAL_FRONTEND_FE_LIMITS_H
#define DAL_FRONTEND_FE_LIMITS_H

/* ---- reading and parsing ---- */

/* Bytes in one source file (the main file, an import or a module). Only
 * regular files are read: a device, FIFO or directory is refused before
 * anything is read from it. */
#define FE_MAX_SOURCE_BYTES (16 << 20)
#define FE_MSG_SOURCE_BYTES "the file has %lld bytes, more than the %d MiB a source file may have" /* bytes, MiB */
#define FE_MSG_NOT_REGULAR "not a regular file (a device, FIFO or directory cannot be a source file)"

/* Levels of the parser's stack: brackets and blocks nested in each other. */
#define FE_MAX_PARSE_DEPTH 5000
#define FE_MSG_PARSE_DEPTH "the program nests too deeply here (brackets and blocks, %d levels of parsing)" /* max */

/* Depth of one expression tree (a chain a + b + c + ... is as deep as it
 * is long), so that whatever walks it recursively has bounded depth. */
#define FE_MAX_EXPR_DEPTH 1000
#define FE_MSG_EXPR_DEPTH "expression nested too deeply (more than %d levels)" /* max */

/* Modules (`import "f.dal" as m`) importing modules. */
#define FE_MAX_MODULE_DEPTH 16
#define FE_MSG_MODULE_DEPTH "modules nest more than %d deep" /* max */

/* ---- evaluation (the tracer, per config evaluation or entry traced) ---- */

/* User-function calls in progress at once. */
#define FE_MAX_CALL_DEPTH 200
#define FE_MSG_CALL_DEPTH "more than %d nested calls: does '%s' call itself without end?" /* max, function */

/* Expressions and statements being evaluated inside each other, over all
 * the calls in progress (each call adds its body's depth), and the C stack
 * that takes (a few hundred bytes a level; more under a sanitizer, where
 * the byte limit comes first): deep recursion is an error, not a crash. */
#define FE_MAX_EVAL_NEST 4000
#define FE_MAX_EVAL_STACK (2 << 20)
#define FE_MSG_EVAL_NEST                                                                                       \
  "evaluation nests too deeply (more than %d levels or %d KiB of stack for the expressions and blocks of "    \
  "all the calls in progress: a deep recursion?)" /* levels, KiB */

/* Statements run, calls made and loop iterations, in all. */
#define FE_MAX_STEPS 5000000
#define FE_MSG_STEPS "evaluation takes more than %d steps (a loop that never ends, or one far too long?)" /* max */
#define FE_MSG_LOOP_STEPS "the loop runs %llu times, more than the %d steps an evaluation may take" /* n, max */

/* Nodes in one traced graph. */
#define FE_MAX_NODES 500000
#define FE_MSG_NODES "the traced graph has more than %d nodes (a loop far too long?)" /* max */

/* Parameters and state tensors (`param`, `state`) in one entry's graph. */
#define FE_MAX_PARAMS 100000
#define FE_MSG_PARAMS "the entry declares more than %d parameters (a loop far too long?)" /* max */

/* Elements of one list ([x] * n, a + b, range(), list literals). */
#define FE_MAX_LIST_LEN 10000000
#define FE_MSG_LIST_LEN "a list of %lld elements is longer than the %d a list may have" /* n, max */

/* Bytes of one string (s + t). */
#define FE_MAX_STR_LEN (1 << 20)
#define FE_MSG_STR_LEN "a string of %lld bytes is longer than the %d a string may have" /* n, max */
#define FE_MSG_SCOPE_LEN "the parameter name scope has %lld bytes, more than the %d a string may have" /* n, max */

/* Bytes of all the lists and strings one evaluation builds (they are kept
 * until it ends, so a loop that copies a growing list each time is caught
 * here even when no single list is too long). */
#define FE_MAX_VALUE_BYTES (512 << 20)
#define FE_MSG_VALUE_BYTES                                                                                     \
  "the lists and strings built at compile time take more than %d MiB in all (a loop that copies a growing "   \
  "list or string each time?)" /* MiB */

#endif
