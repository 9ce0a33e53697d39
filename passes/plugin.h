/* plugin.h — what a pass plugin (a shared object loaded with
 * `dalc --plugin=FILE.so`) includes, and the loader dalc calls.
 *
 * A plugin defines one object named dal_plugin, with DAL_PLUGIN_DEFINE:
 *
 *   static int init(char *why, size_t size) {
 *     static const Pass mine = {"my_pass", "what it does", my_pass_run};
 *     return pass_register(&mine, why, size);
 *   }
 *   DAL_PLUGIN_DEFINE("my_plugin", init)
 *
 * The loader checks dal_plugin.api_version against its own
 * DAL_PLUGIN_API_VERSION and then calls init, which registers passes by
 * name (pass_register, passes.h). The plugin calls ir_* and pass_*
 * functions of the dalc that loads it (dalc is linked with -rdynamic), so
 * it must be built against the same headers: DAL_PLUGIN_API_VERSION goes up
 * whenever Pass, IrGraph, IrNode, the ir_* / pass_* functions a plugin may
 * call, or this header change incompatibly. examples/passes/ holds a
 * worked example; docs/writing-a-pass.md walks through it. Module prefix:
 * pass_plugin_.
 */
#ifndef DAL_PASSES_PLUGIN_H
#define DAL_PASSES_PLUGIN_H

#include <stddef.h>

#include "passes/passes.h"

#define DAL_PLUGIN_API_VERSION 2

typedef struct {
  int api_version;  /* DAL_PLUGIN_API_VERSION as the plugin was compiled */
  const char *name; /* the plugin's name, for listings and messages */
  /* Registers the plugin's passes; returns 0, or -1 with the reason in why. */
  int (*init)(char *why, size_t size);
} DalPlugin;

/* The symbol the loader looks up. */
#define DAL_PLUGIN_SYMBOL "dal_plugin"
#define DAL_PLUGIN_DEFINE(name, init) const DalPlugin dal_plugin = {DAL_PLUGIN_API_VERSION, (name), (init)};

/* Loads the shared object at 'path' and runs its init. Returns 0, or -1
 * with the reason in why: the file is missing or unreadable, dlopen failed
 * (its message), there is no dal_plugin symbol, the plugin was built for
 * another API version, or its init failed. Passes registered before a
 * failing init returned stay registered. */
int pass_plugin_load(const char *path, char *why, size_t size);

/* The plugin (its DalPlugin name) that registered the pass called
 * 'pass_name', or NULL for a built-in or unknown pass. */
const char *pass_plugin_of(const char *pass_name);

/* Drops every pass added by pass_register (pass_registry_reset), then
 * unloads every plugin: at exit, after the last pass has run, so the
 * handles are closed (no leak under LeakSanitizer) and no registry row
 * points into an unloaded object. */
void pass_plugin_unload_all(void);

#endif
