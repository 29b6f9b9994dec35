"""The quantization page's pieces: bench (settings, run, table, charts, export, kept variants),
teaching (one weight matrix by hand), charts."""
