/* loom report: one self-contained HTML page of a run (docs/report.md). The
 * curves are inline SVG drawn here, the sample grids are embedded as data:
 * URIs, nothing is fetched from anywhere and the page has no scripts. */
#include "cli.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAXCOLS 32

typedef struct {
    char *names[MAXCOLS];
    size_t ncols, nrows, cap;
    double *v;      /* (nrows, ncols), NaN where empty */
    char **event;   /* (nrows) the "event" column ("" when absent) */
} csv_table;

static void csv_free(csv_table *t) {
    for (size_t c = 0; c < t->ncols; c++) free(t->names[c]);
    for (size_t r = 0; r < t->nrows; r++) free(t->event[r]);
    free(t->v), free(t->event);
}

/* metrics.csv: a header of column names, then rows of numbers (empty = none)
 * and the event column's words */
static loom_status csv_read(csv_table *t, const char *path, loom_error *err) {
    memset(t, 0, sizeof *t);
    FILE *f = fopen(path, "r");
    if (!f) return loom_fail(err, loom_open_status(errno), "%s: %s", path, strerror(errno));
    char line[4096];
    long ev_col = -1;
    loom_status st = LOOM_OK;
    if (!fgets(line, sizeof line, f)) {
        fclose(f);
        return loom_fail(err, LOOM_EFORMAT, "%s: empty (no header)", path);
    }
    line[strcspn(line, "\r\n")] = 0;
    for (char *tok = strtok(line, ","); tok && t->ncols < MAXCOLS; tok = strtok(NULL, ",")) {
        if (strcmp(tok, "event") == 0) ev_col = (long)t->ncols;
        t->names[t->ncols++] = strdup(tok);
    }
    if (t->ncols == 0 || strcmp(t->names[0], "step") != 0) {
        fclose(f);
        csv_free(t);
        return loom_fail(err, LOOM_EFORMAT, "%s: not a loom metrics file (its first column is not \"step\")", path);
    }
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (!*line) continue;
        if (t->nrows == t->cap) {
            t->cap = t->cap ? 2 * t->cap : 256;
            double *v = realloc(t->v, t->cap * t->ncols * sizeof *v);
            char **e = realloc(t->event, t->cap * sizeof *e);
            if (v) t->v = v;
            if (e) t->event = e;
            if (!v || !e) {
                st = loom_fail(err, LOOM_ENOMEM, "%s: out of memory", path);
                break;
            }
        }
        double *row = t->v + t->nrows * t->ncols;
        t->event[t->nrows] = NULL;
        const char *p = line;
        for (size_t c = 0; c < t->ncols; c++) {
            size_t len = strcspn(p, ",");
            row[c] = NAN;
            if ((long)c == ev_col) t->event[t->nrows] = strndup(p, len);
            else if (len) {
                char *end;
                double d = strtod(p, &end);
                if (end == p + len && isfinite(d)) row[c] = d;
            }
            p += len;
            if (*p == ',') p++;
        }
        if (!t->event[t->nrows]) t->event[t->nrows] = strdup("");
        t->nrows++;
    }
    fclose(f);
    if (st) csv_free(t);
    return st;
}

static void esc(FILE *f, const char *s) {
    for (; *s; s++) {
        switch (*s) {
        case '<': fputs("&lt;", f); break;
        case '>': fputs("&gt;", f); break;
        case '&': fputs("&amp;", f); break;
        case '"': fputs("&quot;", f); break;
        default: fputc(*s, f);
        }
    }
}

static void base64_file(FILE *out, const char *path) {
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    FILE *f = fopen(path, "rb");
    if (!f) return;
    unsigned char b[3];
    size_t n;
    while ((n = fread(b, 1, 3, f)) > 0) {
        unsigned v = (unsigned)b[0] << 16 | (n > 1 ? (unsigned)b[1] << 8 : 0) | (n > 2 ? b[2] : 0);
        fputc(tab[v >> 18 & 63], out), fputc(tab[v >> 12 & 63], out);
        fputc(n > 1 ? tab[v >> 6 & 63] : '=', out), fputc(n > 2 ? tab[v & 63] : '=', out);
    }
    fclose(f);
}

static const char *const colours[] = {"#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"};

/* One chart: the columns cols[0..nc) against step, a circle per logged value
 * (class "pt <column>"), a dashed line at every resume. log10 scale for
 * columns that span more than two decades of positive values (lr, grad_norm). */
static void chart(FILE *f, const csv_table *t, const char *title, const size_t *cols, size_t nc) {
    const double W = 640, H = 240, L = 64, R = 16, T = 28, B = 32;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    size_t npts = 0;
    for (size_t r = 0; r < t->nrows; r++) {
        const double *row = t->v + r * t->ncols;
        for (size_t k = 0; k < nc; k++)
            if (isfinite(row[cols[k]])) {
                x0 = fmin(x0, row[0]), x1 = fmax(x1, row[0]);
                y0 = fmin(y0, row[cols[k]]), y1 = fmax(y1, row[cols[k]]);
                npts++;
            }
    }
    if (!npts) return;
    const bool logy = y0 > 0 && y1 / y0 > 100;
    if (logy) y0 = log10(y0), y1 = log10(y1);
    if (x1 <= x0) x0 -= 1, x1 += 1;
    if (y1 <= y0) { /* a constant: a band around it */
        const double h = y0 != 0 ? 0.1 * fabs(y0) : 0.5;
        y0 -= h, y1 += h;
    }
    const double pad = 0.05 * (y1 - y0);
    y0 -= pad, y1 += pad;
#define PX(x) (L + ((x) - x0) / (x1 - x0) * (W - L - R))
#define PY(y) (T + (y1 - (logy ? log10(y) : (y))) / (y1 - y0) * (H - T - B))
    fprintf(f, "<figure><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" "
               "viewBox=\"0 0 %.0f %.0f\" role=\"img\">\n", W, H, W, H);
    fprintf(f, "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" fill=\"#fff\" stroke=\"#999\"/>\n", L, T,
            W - L - R, H - T - B);
    fprintf(f, "<text x=\"%.0f\" y=\"18\" font-size=\"14\" font-weight=\"bold\">", L);
    esc(f, title);
    fprintf(f, "%s</text>\n", logy ? " (log scale)" : "");
    for (int k = 0; k <= 4; k++) { /* y ticks */
        double yv = y0 + (y1 - y0) * k / 4.0, py = T + (1 - k / 4.0) * (H - T - B);
        fprintf(f, "<text x=\"%.0f\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%.4g</text>\n", L - 4, py + 4,
                logy ? pow(10, yv) : yv);
    }
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\">%.0f</text>", L, H - 12, x0);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"end\">%.0f</text>", W - R, H - 12, x1);
    fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" text-anchor=\"middle\">step</text>\n", (L + W - R) / 2,
            H - 12);
    for (size_t r = 0; r < t->nrows; r++)
        if (strcmp(t->event[r], "resume") == 0 && isfinite(t->v[r * t->ncols]))
            fprintf(f, "<line class=\"resume\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%.0f\" y2=\"%.0f\" stroke=\"#888\" "
                       "stroke-dasharray=\"4 3\"/>\n", PX(t->v[r * t->ncols]), PX(t->v[r * t->ncols]), T, H - B);
    for (size_t k = 0; k < nc; k++) {
        const char *col = colours[k % 6];
        fprintf(f, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"1.5\" points=\"", col);
        for (size_t r = 0; r < t->nrows; r++) {
            const double *row = t->v + r * t->ncols;
            if (isfinite(row[cols[k]]) && (!logy || row[cols[k]] > 0))
                fprintf(f, "%.1f,%.1f ", PX(row[0]), PY(row[cols[k]]));
        }
        fputs("\"/>\n", f);
        for (size_t r = 0; r < t->nrows; r++) {
            const double *row = t->v + r * t->ncols;
            if (isfinite(row[cols[k]]) && (!logy || row[cols[k]] > 0))
                fprintf(f, "<circle class=\"pt %s\" cx=\"%.1f\" cy=\"%.1f\" r=\"2\" fill=\"%s\"><title>step %.0f: %.6g</title></circle>\n",
                        t->names[cols[k]], PX(row[0]), PY(row[cols[k]]), col, row[0], row[cols[k]]);
        }
        fprintf(f, "<text x=\"%.0f\" y=\"%.0f\" font-size=\"11\" fill=\"%s\" text-anchor=\"end\">", W - R - 4,
                T + 14 + 13.0 * (double)k, col);
        esc(f, t->names[cols[k]]);
        fputs("</text>\n", f);
    }
    fputs("</svg></figure>\n", f);
#undef PX
#undef PY
}

static int name_cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

loom_status cli_report_write(const char *dir, const char *out, loom_error *err) {
    char path[4096], outpath[4096], tmp[4200];
    csv_table t;
    if ((size_t)snprintf(path, sizeof path, "%s/metrics.csv", dir) >= sizeof path)
        return loom_fail(err, LOOM_EINVAL, "%s: path too long", dir);
    if ((size_t)snprintf(outpath, sizeof outpath, "%s", out ? out : dir) >= sizeof outpath ||
        (!out && (size_t)snprintf(outpath, sizeof outpath, "%s/report.html", dir) >= sizeof outpath))
        return loom_fail(err, LOOM_EINVAL, "%s: path too long", dir);
    /* the checkpoint: model, step, best validation */
    char ck[4096];
    snprintf(ck, sizeof ck, "%s/checkpoint.safetensors", dir);
    loom_st_file *sf;
    loom_status st = loom_safetensors_open(&sf, ck, err);
    if (st) return st;
    const char *meta_step = loom_st_meta(sf, "step"), *cfgjson = loom_st_meta(sf, "config");
    if (!meta_step || !cfgjson) {
        loom_safetensors_close(sf);
        return loom_fail(err, LOOM_EFORMAT, "%s: not a loom checkpoint (no step or config)", ck);
    }
    loom_config cfgs[LOOM_MAX_MODELS];
    char roles[LOOM_MAX_MODELS][LOOM_ROLELEN];
    size_t nm = 0;
    loom_train_opts o;
    if ((st = loom_run_config_parse(cfgs, roles, &nm, &o, cfgjson, ck, err))) {
        loom_safetensors_close(sf);
        return st;
    }
    const long step = strtol(meta_step, NULL, 10);
    char *config = strdup(cfgjson);
    loom_safetensors_close(sf);
    char best[128] = "";
    snprintf(ck, sizeof ck, "%s/best.safetensors", dir);
    loom_error e2;
    if (loom_safetensors_open(&sf, ck, &e2) == LOOM_OK) { /* the best validation's step and value */
        const char *bs = loom_st_meta(sf, "best_step"), *bv = loom_st_meta(sf, "best_valid");
        if (bs && bv) snprintf(best, sizeof best, "%.4f bits/dim at step %ld", strtod(bv, NULL), strtol(bs, NULL, 10));
        loom_safetensors_close(sf);
    }
    if ((st = csv_read(&t, path, err))) {
        free(config), loom_train_opts_free(&o);
        return st;
    }
    snprintf(tmp, sizeof tmp, "%s.tmp", outpath);
    FILE *f = fopen(tmp, "w");
    if (!f) {
        st = loom_fail(err, loom_open_status(errno), "%s: %s", outpath, strerror(errno));
        csv_free(&t), free(config), loom_train_opts_free(&o);
        return st;
    }
    fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n", f);
    if (step < o.steps) /* a run in progress: the browser reloads it */
        fputs("<meta http-equiv=\"refresh\" content=\"30\">\n", f);
    fputs("<title>loom run ", f);
    esc(f, dir);
    fputs("</title>\n<style>body{font-family:sans-serif;margin:2em;max-width:1000px}"
          "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px;text-align:left}"
          "pre{background:#f6f6f6;padding:8px;overflow:auto}figure{margin:1em 0}"
          "img{image-rendering:pixelated;border:1px solid #ccc;min-width:512px}</style>\n</head><body>\n<h1>loom run ", f);
    esc(f, dir);
    fprintf(f, "</h1>\n<table id=\"summary\">\n<tr><th>model</th><td>");
    for (size_t j = 0; j < nm; j++) {
        if (nm > 1) esc(f, roles[j]), fputs(": ", f);
        fprintf(f, "%s %zux%zu, %zu layer%s, hidden %zu%s", cfgs[j].model, cfgs[j].height, cfgs[j].width,
                cfgs[j].layers, cfgs[j].layers == 1 ? "" : "s", cfgs[j].hidden, j + 1 < nm ? "; " : "");
    }
    fprintf(f, "</td></tr>\n<tr><th>checkpoint step</th><td id=\"step\">%ld of %ld</td></tr>\n", step, o.steps);
    /* final metrics: the last value of every column */
    for (size_t c = 1; c < t.ncols; c++) {
        if (strcmp(t.names[c], "event") == 0) continue;
        for (size_t r = t.nrows; r-- > 0;)
            if (isfinite(t.v[r * t.ncols + c])) {
                fprintf(f, "<tr><th>%s</th><td>%.6g (step %.0f)</td></tr>\n", t.names[c], t.v[r * t.ncols + c],
                        t.v[r * t.ncols]);
                break;
            }
    }
    if (*best) fprintf(f, "<tr><th>best validation</th><td>%s (best.safetensors)</td></tr>\n", best);
    fputs("</table>\n<h2>Curves</h2>\n", f);
    /* the bits/dim columns together, then lr, grad norm, and every other one alone */
    size_t bpd[MAXCOLS] = {0}, nb = 0;
    for (size_t c = 1; c < t.ncols; c++)
        if (strstr(t.names[c], "bits_per_dim")) bpd[nb++] = c;
    chart(f, &t, "bits/dim", bpd, nb);
    for (size_t c = 1; c < t.ncols; c++) {
        const char *nmc = t.names[c];
        if (strstr(nmc, "bits_per_dim") || strcmp(nmc, "event") == 0 || strcmp(nmc, "wall_s") == 0) continue;
        chart(f, &t, nmc, &c, 1);
    }
    /* sample grids in step order, then the final one */
    DIR *d = opendir(dir);
    char **names = NULL;
    size_t ns = 0, capn = 0;
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (strncmp(e->d_name, "samples_", 8) != 0 || len < 12 || strcmp(e->d_name + len - 4, ".png") != 0) continue;
        if (ns == capn) {
            char **g = realloc(names, (capn = capn ? 2 * capn : 16) * sizeof *g);
            if (!g) break;
            names = g;
        }
        names[ns++] = strdup(e->d_name);
    }
    if (d) closedir(d);
    if (ns) qsort(names, ns, sizeof *names, name_cmp);
    fputs("<h2>Samples</h2>\n", f);
    for (size_t i = 0; i <= ns; i++) {
        const char *nmi = i < ns ? names[i] : "samples.png";
        char p2[4400];
        snprintf(p2, sizeof p2, "%s/%s", dir, nmi);
        FILE *probe = fopen(p2, "rb");
        if (!probe) continue;
        fclose(probe);
        fputs("<figure class=\"samples\"><img alt=\"", f);
        esc(f, nmi);
        fputs("\" src=\"data:image/png;base64,", f);
        base64_file(f, p2);
        fputs("\"><figcaption>", f);
        if (i < ns) fprintf(f, "step %ld", strtol(nmi + 8, NULL, 10));
        else fputs("end of training (samples.png)", f);
        fputs("</figcaption></figure>\n", f);
    }
    for (size_t i = 0; i < ns; i++) free(names[i]);
    free(names);
    fputs("<h2>Configuration</h2>\n<pre id=\"config\">", f);
    esc(f, config);
    fputs("</pre>\n<p>Written by loom ", f);
    esc(f, loom_version());
    fputs(" (<code>loom report</code>); refreshed by <code>loom train</code> at every checkpoint.</p>\n</body></html>\n", f);
    bool ok = fflush(f) == 0 && !ferror(f);
    ok = fclose(f) == 0 && ok;
    if (!ok || rename(tmp, outpath) != 0) {
        st = loom_fail(err, LOOM_EIO, "%s: %s", outpath, strerror(errno));
        remove(tmp);
    }
    csv_free(&t), free(config), loom_train_opts_free(&o);
    return st;
}

int cmd_report(int argc, char **argv) {
    const char *out = NULL;
    bool json = false;
    cli_arg args[] = {
        {"out", ARG_STR, &out, 0, 0, "HTML file to write (default RUN_DIR/report.html)", false},
        {"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false},
    };
    const char *pos[1];
    int npos;
    cli_parse("report", "RUN_DIR [--out FILE.html] [--json]", argc, argv, args, sizeof args / sizeof args[0], pos, 1,
              &npos);
    if (npos != 1) cli_die(2, "report needs a run directory (see 'loom report --help')");
    loom_error err;
    loom_status st = cli_report_write(pos[0], out, &err);
    if (st) cli_die_err(st, &err);
    char path[4200];
    snprintf(path, sizeof path, "%s/report.html", pos[0]);
    if (json) {
        loom_train_opts o;
        loom_train_state ts;
        loom_model *m = cli_load_model(pos[0], 1, &o, &ts);
        cli_json j;
        cli_json_begin(&j, m->cfg.model, ts.step, cli_checkpoint_path(pos[0]), "report");
        cli_json_str(&j, "out", out ? out : path);
        cli_json_end(&j);
        loom_train_opts_free(&o);
        loom_model_free(m);
    } else {
        fprintf(stderr, "loom: report of %s -> %s\n", pos[0], out ? out : path);
    }
    return 0;
}

/* loom export: the weights a run uses for inference (its moving average with
 * --ema), without the optimiser state, in a checkpoint every command reads */
int cmd_export(int argc, char **argv) {
    const char *out = NULL;
    bool weights_only = false, json = false;
    cli_arg args[] = {
        {"weights-only", ARG_FLAG, &weights_only, 0, 0, "parameters only (no Adam moments, no moving average)", false},
        {"out", ARG_STR, &out, 0, 0, "safetensors file to write", false},
        {"json", ARG_FLAG, &json, 0, 0, "one JSON object on stdout", false},
    };
    const char *pos[1];
    int npos;
    cli_parse("export", "RUN_DIR|CHECKPOINT --weights-only --out FILE.safetensors [--json]", argc, argv, args,
              sizeof args / sizeof args[0], pos, 1, &npos);
    if (npos != 1) cli_die(2, "export needs a run directory or checkpoint (see 'loom export --help')");
    if (!weights_only) cli_die(2, "export: give --weights-only (the one export there is) (see 'loom export --help')");
    if (!out) cli_die(2, "export needs --out FILE.safetensors (see 'loom export --help')");
    const char *src = cli_checkpoint_path(pos[0]);
    char srcpath[4096];
    snprintf(srcpath, sizeof srcpath, "%s", src);
    if (strcmp(srcpath, out) == 0) cli_die(2, "export: --out %s is the checkpoint being read", out);
    loom_train_opts o;
    loom_train_state ts;
    loom_model *m = cli_load_model(pos[0], 1, &o, &ts); /* the moving average, when the run has one */
    ts.best_step = 0; /* the export is one set of weights, not a run's history */
    loom_error err;
    loom_status st = loom_checkpoint_save(out, m, NULL, NULL, &ts, &o, &err);
    if (st) cli_die_err(st, &err);
    if (json) {
        cli_json j;
        cli_json_begin(&j, m->cfg.model, ts.step, srcpath, "weights");
        cli_json_str(&j, "out", out);
        cli_json_int(&j, "parameters", (long long)m->nfloats);
        cli_json_int(&j, "tensors", (long long)m->nparams);
        cli_json_str(&j, "weights", o.ema > 0 ? "moving average" : "trained");
        cli_json_end(&j);
    } else {
        fprintf(stderr, "loom: %zu parameters (%s weights) of step %ld -> %s\n", m->nfloats,
                o.ema > 0 ? "moving-average" : "trained", ts.step, out);
    }
    loom_train_opts_free(&o);
    loom_model_free(m);
    return 0;
}
