/* cmd_generate.c — `dalc generate --model FILE.safetensors CAPTION ...`:
 * images from captions with nothing but a model file. The file's metadata
 * names the model's source (dal.source, else dal.model) and config
 * (runtime/io/checkpoint.h); dalc compiles that model with that config and
 * runs the executables' `generate` command on it (runtime/exe/exe_generate.c),
 * which checks the rest (tokenizer, parameters, source fingerprint). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "runtime/exe/exe.h"
#include "runtime/io/safetensors.h"
#include "tools/cli.h"

/* The value of --model in argv[0..argc), or NULL (with a message in e if
 * --model has no value). The other options are the runtime's to check. */
static const char *model_flag(int argc, char **argv, RtErr *e) {
  const char *v = NULL;
  e->msg[0] = 0;
  for (int i = 0; i < argc; i++)
    if (rt_exe_flag(argc, argv, &i, "--model", &v, e)) return v;
  return NULL;
}

int cmd_generate(int argc, char **argv) {
  if (cli_wants_help(argc, argv)) return rt_exe_usage(stdout, "dalc", "generate") ? 0 : 1;
  RtErr e;
  const char *path = model_flag(argc, argv, &e);
  if (!path) {
    if (e.msg[0]) cli_error("generate: %s", e.msg);
    else cli_error("generate needs --model FILE.safetensors (a checkpoint of a model trained with --tokenizer)");
    return 1;
  }
  RtTensorList *l = NULL;
  RtMeta *m = NULL;
  if (rt_safetensors_read_meta(path, &l, &m, &e)) {
    cli_error("%s", e.msg);
    return 1;
  }
  rt_list_free(l);
  const char *source = rt_meta_get(m, "dal.source"), *model = rt_meta_get(m, "dal.model");
  const char *config = rt_meta_get(m, "dal.config");
  int status = 1;
  if (!(source || model) || !config) {
    cli_error("%s: not a dal model file (its metadata has no dal.source / dal.model and dal.config)", path);
    goto done;
  }
  /* The recorded absolute path, else the model's name as it was given. */
  const char *file = source && access(source, R_OK) == 0 ? source : model;
  if (!file || access(file, R_OK) != 0) {
    cli_error("%s was made from %s, which cannot be read here (dalc compiles the model from its source; "
              "or use the executable built from it: EXE generate --model %s ...)",
              path, source ? source : model, path);
    goto done;
  }
  DalcArgs a = {.file = file, .config = config};
  const char *backend = getenv("DAL_BACKEND");
  a.ref = backend && strcmp(backend, "ref") == 0;
  char **rest = malloc(sizeof *rest * (size_t)(argc + 1));
  if (!rest) goto done;
  rest[0] = "generate";
  for (int i = 0; i < argc; i++) rest[i + 1] = argv[i];
  a.rest_argc = argc + 1;
  a.rest_argv = rest;
  status = cmd_program(&a);
  free(rest);
done:
  rt_meta_free(m);
  return status;
}
