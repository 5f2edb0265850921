/* make_seeds.c - writes the runtime harnesses' seed corpora (fuzz/corpus/{idx,cifar,ckpt,text})
 * from the runtime's own writers and small hand-made files, so the seeds follow the
 * formats as they change: `build-fuzz/fuzz/make_seeds fuzz/corpus`. Each file starts
 * with the harness's mode byte (fuzz_*.c). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "ckpt.h"
#include "fuzz_model.h"
#include "mlcrt_error.h"

static void write_file(const char *dir, const char *name, uint8_t mode, const void *p, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(&mode, 1, 1, f) != 1 || (n && fwrite(p, 1, n, f) != n) || fclose(f)) {
        perror(path);
        exit(1);
    }
}

/* An IDX u8 file of the given dims, data bytes i * 37 mod 251. */
static size_t idx_bytes(uint8_t *b, int ndims, const uint32_t *dims) {
    size_t k = 0, total = 1;
    b[k++] = 0, b[k++] = 0, b[k++] = 8, b[k++] = (uint8_t)ndims;
    for (int d = 0; d < ndims; d++, total *= dims[d - 1])
        for (int i = 3; i >= 0; i--) b[k++] = (uint8_t)(dims[d] >> (8 * i));
    for (size_t i = 0; i < total; i++) b[k++] = (uint8_t)(i * 37 % 251 % (ndims == 1 ? 10 : 256));
    return k;
}

static size_t gzip_bytes(uint8_t *out, size_t cap, const uint8_t *in, size_t n) {
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, 9, Z_DEFLATED, 16 + 15, 8, Z_DEFAULT_STRATEGY) != Z_OK) exit(1);
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) exit(1);
    size_t len = z.total_out;
    deflateEnd(&z);
    return len;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds CORPUS_DIR (with idx/, cifar/, ckpt/, text/ inside)\n");
        return 2;
    }
    char dir[1024];
    static uint8_t b[1 << 16], z[1 << 16];

    snprintf(dir, sizeof dir, "%s/idx", argv[1]);
    uint32_t img[3] = {3, 2, 2}, lab[1] = {5};
    size_t n = idx_bytes(b, 3, img);
    write_file(dir, "images", 0x02, b, n); /* 2 x 2 images, expected size 4 */
    write_file(dir, "images-limit", 0x04, b, n);
    write_file(dir, "images-gz", 0x02, z, gzip_bytes(z, sizeof z, b, n));
    n = idx_bytes(b, 1, lab);
    write_file(dir, "labels", 0x03, b, n);
    write_file(dir, "labels-gz", 0x03, z, gzip_bytes(z, sizeof z, b, n));

    snprintf(dir, sizeof dir, "%s/cifar", argv[1]);
    for (int hundred = 0; hundred < 2; hundred++) {
        size_t rec = 3072 + 1 + (size_t)hundred;
        for (int r = 0; r < 2; r++) {
            uint8_t *p = b + r * rec;
            p[0] = (uint8_t)(hundred ? 7 : r + 3);
            if (hundred) p[1] = (uint8_t)(40 + r);
            for (size_t i = 1 + (size_t)hundred; i < rec; i++) p[i] = (uint8_t)(i * 13);
        }
        write_file(dir, hundred ? "cifar100" : "cifar10", (uint8_t)hundred, b, 2 * rec);
    }

    snprintf(dir, sizeof dir, "%s/ckpt", argv[1]);
    fz_model m;
    for (int i = 0; i < 18; i++) ((uint32_t *)m.t)[i] = 0x3f800000u + (uint32_t)i;
    m.step = 7;
    mlcrt_train_state st = {1, 4, 42, 10, 3.5, 2, 1, 1, {0.5f}, {0.25f}, 1, 3};
    char path[1024], msg[MLCRT_MSG_SIZE];
    snprintf(path, sizeof path, "%s/.ckpt.tmp", dir);
    if (mlcrt_ckpt_save_state(&fz_api, &m, &st, path, msg, sizeof msg) != MLCRT_OK) {
        fprintf(stderr, "%s\n", msg);
        return 1;
    }
    FILE *f = fopen(path, "rb");
    n = f ? fread(b, 1, sizeof b, f) : 0;
    if (f) fclose(f);
    remove(path);
    write_file(dir, "state", 0x00, b, n);
    write_file(dir, "state-recrc", 0x05, b, n);

    /* text: after the mode byte, T = 1 + 7, a vocabulary (text: 1 + 127; tokens: 1 + 299)
     * and, for a directory, where train.bin ends (fuzz_text.c) */
    snprintf(dir, sizeof dir, "%s/text", argv[1]);
    static const char prose[] =
        "It was the best of times, it was the worst of times, it was the "
        "age of wisdom, it was the age of foolishness.\n";
    n = 0;
    b[n++] = 7, b[n++] = 127, b[n++] = 0;
    memcpy(b + n, prose, sizeof prose - 1);
    n += sizeof prose - 1;
    write_file(dir, "text-train", 0x00, b, n);
    write_file(dir, "text-val", 0x02, b, n);
    n = 0;
    b[n++] = 7, b[n++] = 0x2b, b[n++] = 1, b[n++] = 192; /* vocabulary 300; 3/4 train.bin */
    for (unsigned i = 0; i < 48; i++)                    /* ids 0, 7, 14, ... below 300, little-endian */
        b[n++] = (uint8_t)(i * 7 % 300), b[n++] = (uint8_t)(i * 7 % 300 >> 8);
    write_file(dir, "tokens-train", 0x01, b, n);
    write_file(dir, "tokens-val-limit", 0x07, b, n);
    return 0;
}
