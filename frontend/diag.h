/* diag.h — diagnostics: "file:line:col: error: message", then the source
 * line and a caret under the column.
 *
 * The source lines come from a process-wide registry of the texts that live
 * programs have loaded (so in-memory sources from fe_load_string show too);
 * a file that is not registered is read from disk. The registry is guarded
 * by a mutex.
 *
 * Prefix: fe_diag_.
 */
#ifndef DAL_FRONTEND_DIAG_H
#define DAL_FRONTEND_DIAG_H

#include <stdarg.h>

#include "frontend/arena.h"
#include "ir/ir.h"

/* Makes 'text' the source of 'file' for diagnostics until 'owner' is
 * unregistered. Both pointers must stay valid until then. */
void fe_diag_register(const char *file, const char *text, const void *owner);
void fe_diag_unregister(const void *owner);

/* Appends one diagnostic of the given kind ("error", "note") to b. */
void fe_diag_append(FeBuf *b, const char *kind, SrcLoc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
void fe_diag_vappend(FeBuf *b, const char *kind, SrcLoc loc, const char *fmt, va_list ap);

#endif
