/* exe_outputs.c — the files a command will write, checked before it does
 * any work (see exe.h). */
#include <stdbool.h>
#include <string.h>

#include "runtime/exe/exe.h"
#include "runtime/io/fileio.h"

/* Every flag of the commands (rt_main) whose value is a file they write.
 * run's --out takes NAME=FILE. */
static const char *const out_flags[] = {"--checkpoint", "--log",     "--out",        "--save-state",
                                        "--logits-out", "--out-npy", "--out-tokens", "--out-recon",
                                        "--out-captions"};

int rt_exe_check_outputs(int argc, char **argv, RtErr *e) {
  if (argc < 1) return 0;
  bool run = strcmp(argv[0], "run") == 0, train = strcmp(argv[0], "train") == 0, ckpt = false;
  const char *resume = NULL;
  RtErr ignored; /* a missing value is the command's own parser's to report */
  for (int i = 1; i < argc; i++) {
    const char *v;
    if (train && rt_exe_flag(argc, argv, &i, "--resume", &v, &ignored) == 1) {
      resume = v;
      continue;
    }
    for (size_t k = 0; k < sizeof out_flags / sizeof *out_flags; k++) {
      if (rt_exe_flag(argc, argv, &i, out_flags[k], &v, &ignored) != 1) continue;
      const char *eq = run && strcmp(out_flags[k], "--out") == 0 ? strchr(v, '=') : NULL;
      if (rt_check_writable(out_flags[k], eq ? eq + 1 : v, e)) return -1;
      ckpt |= strcmp(out_flags[k], "--checkpoint") == 0;
      break;
    }
  }
  /* without --checkpoint, a resumed run writes its checkpoints over --resume's */
  return train && !ckpt && resume ? rt_check_writable("--resume", resume, e) : 0;
}
