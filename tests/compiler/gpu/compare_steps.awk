# tests/compiler/gpu/compare_steps.awk - compares two step_compare.c outputs pasted side
# by side (paste -d' ' A B | awk -v tol=T -v name=M -f compare_steps.awk) and prints each
# line on which they differ by more than a relative tol (default 2e-3), prefixed by name.
# A loss, a sum of squares and a sum of magnitudes are held to tol of their own size. A
# tensor's sum is held to tol of its sum of magnitudes instead: a sum that cancels (a
# gradient, Adam's first moment) can be 100 times smaller than its terms, and then
# differs by more than tol of itself when only the order of the additions differs.
# A field that is not a finite number (a NaN, an infinity, a name) must be the same
# word on both sides (a NaN of either sign is "nan"): awk reads "nan" as 0, so a NaN
# compared as a number would pass beside anything small.
# Exit status 1 when a line differs. Used by run_cuda_vs_c.sh and bench/gpu/run.sh.
function abs(x) { return x < 0 ? -x : x }
function finite(x) { return x ~ /^[-+]?([0-9]|\.[0-9])/ }
function word(x) {
    x = tolower(x)
    return x ~ /nan/ ? "nan" : x
}
function off(a, b, scale) {
    if (!finite(a) || !finite(b)) return word(a) != word(b)
    return abs(a - b) > tol * scale + 1e-5
}
BEGIN { if (tol == "") tol = 2e-3 }
{
    n = int(NF / 2)
    bad = NF != 2 * n # the two sides' lines differ in length
    for (i = 1; i <= n; i++) if ((!finite($i) || !finite($(i + n))) && word($i) != word($(i + n))) bad = 1
    if ($1 == "tensor" || $1 == "forward") { # ... SUM SUMSQ SUMABS
        s = n - 2
        if (off($s, $(s + n), abs($n) + abs($(2 * n)))) bad = 1
        for (i = s + 1; i <= n; i++) if (off($i, $(i + n), abs($i) + abs($(i + n)))) bad = 1
    } else {
        for (i = 1; i <= n; i++) if (off($i, $(i + n), abs($i) + abs($(i + n)))) bad = 1
    }
    if (bad) {
        print name ": " $0
        fail = 1
    }
}
END { exit fail }
