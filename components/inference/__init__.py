"""The Inference page's pieces, one tab each (each module's render() draws its tab)."""
