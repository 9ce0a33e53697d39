/* plugin.c — loads pass plugins (shared objects defining dal_plugin, see
 * plugin.h), remembers which passes each registered, and unloads them. */
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "passes/plugin.h"

#define PLUGIN_MAX 16

typedef struct {
  void *handle;
  const char *name;        /* the plugin's DalPlugin name */
  int first_pass, end_pass; /* the registry rows its init added: [first, end) */
} Loaded;

static Loaded loaded[PLUGIN_MAX];
static int nloaded;

static int registered_count(void) {
  int n;
  pass_list(&n);
  return n;
}

int pass_plugin_load(const char *path, char *why, size_t size) {
  if (nloaded == PLUGIN_MAX) {
    snprintf(why, size, "cannot load plugin '%s': at most %d plugins", path, PLUGIN_MAX);
    return -1;
  }
  if (access(path, R_OK) != 0) {
    snprintf(why, size, "cannot read plugin '%s': %s", path, strerror(errno));
    return -1;
  }
  /* dlopen searches the library path for a name without a slash; a plugin
   * is a file, so name it relative to the current directory instead. */
  char file[4096];
  snprintf(file, sizeof file, "%s%s", strchr(path, '/') ? "" : "./", path);
  void *handle = dlopen(file, RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    snprintf(why, size, "cannot load plugin '%s': %s", path, dlerror());
    return -1;
  }
  const DalPlugin *plugin = dlsym(handle, DAL_PLUGIN_SYMBOL);
  if (!plugin) {
    snprintf(why, size,
             "'%s' is not a dal plugin: it defines no '%s' symbol (DAL_PLUGIN_DEFINE in passes/plugin.h)", path,
             DAL_PLUGIN_SYMBOL);
    dlclose(handle);
    return -1;
  }
  if (plugin->api_version != DAL_PLUGIN_API_VERSION) {
    snprintf(why, size, "plugin '%s' was built for plugin API version %d, this dalc has version %d: rebuild it", path,
             plugin->api_version, DAL_PLUGIN_API_VERSION);
    dlclose(handle);
    return -1;
  }
  if (!plugin->init) {
    snprintf(why, size, "plugin '%s' has no init function", path);
    dlclose(handle);
    return -1;
  }
  Loaded *l = &loaded[nloaded++];
  *l = (Loaded){handle, plugin->name ? plugin->name : path, registered_count(), 0};
  char reason[300] = "";
  int status = plugin->init(reason, sizeof reason);
  l->end_pass = registered_count();
  if (status) {
    snprintf(why, size, "plugin '%s' failed to initialise: %s", path, reason[0] ? reason : "(no reason given)");
    return -1;
  }
  return 0;
}

const char *pass_plugin_of(const char *pass_name) {
  int n;
  const Pass *all = pass_list(&n);
  const Pass *p = pass_find(pass_name);
  if (!p) return NULL;
  int row = (int)(p - all);
  for (int i = 0; i < nloaded; i++)
    if (row >= loaded[i].first_pass && row < loaded[i].end_pass) return loaded[i].name;
  return NULL;
}

void pass_plugin_unload_all(void) {
  if (!nloaded) return;
  pass_registry_reset();
  for (int i = nloaded - 1; i >= 0; i--) dlclose(loaded[i].handle);
  nloaded = 0;
}
