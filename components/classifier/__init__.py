"""The classifier page's pieces: charts.py (figures and tables: data view, training curves, results, attributions),
train.py (the Train tab: probe, fine-tune settings, the live run), results.py (the Results, Try and Export tabs)."""
