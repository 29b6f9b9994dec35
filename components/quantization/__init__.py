"""The quantization page's pieces: bench (settings, run, results, charts, export, kept variants),
table (the variants and results tables: reasons as sentences, blanks, why a row is lossy), teaching
(one weight matrix by hand), charts."""
