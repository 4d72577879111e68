/*
 * engine/commands/quantize.c - the quantize command (engine/commands/quantize.h).
 */
#include "engine/commands/quantize.h"

#include <stdio.h>
#include <sys/stat.h>

#include "engine/commands/clock.h"
#include "engine/commands/command.h"
#include "weights/qrz.h"

int quantize_command(const QuantizeOptions *o, ThreadPool *pool, char *err, size_t errlen) {
    if (model_is_qrz(o->in_path)) {
        snprintf(err, errlen, "%s is already a .qrz file", o->in_path);
        return -1;
    }
    /* Before the slow load: a device, FIFO, directory or link as OUT is refused. */
    if (qrz_check_destination(o->out_path, err, errlen) != 0) return -1;
    struct stat in, out;
    const int replacing = stat(o->out_path, &out) == 0;
    if (replacing && stat(o->in_path, &in) == 0 && in.st_dev == out.st_dev && in.st_ino == out.st_ino) {
        snprintf(err, errlen, "%s is the input checkpoint; write the .qrz to another file", o->out_path);
        return -1;
    }
    const double start = now_seconds();
    ModelWeights m;
    if (model_open(&m, o->in_path, &o->quant, pool, err, errlen) != 0) return -1;
    if (o->verbose) command_describe(stderr, o->in_path, &m, 1, 0, 0, pool);
    if (qrz_write(&m, o->out_path, err, errlen) != 0) {
        model_close(&m);
        return -1;
    }
    char name[64];
    quant_config_name(&m.quant, name, sizeof name);
    struct stat written;
    const long long bytes = stat(o->out_path, &written) == 0 ? (long long)written.st_size : -1;
    char shown[1024];
    fprintf(stderr, "wrote %s%s: %s, %lld bytes (from %zu) in %.2f s\n", printable(o->out_path, shown, sizeof shown),
            replacing ? " (replacing the file that was there)" : "", name, bytes, m.ck.map_size, now_seconds() - start);
    model_close(&m);
    return 0;
}
