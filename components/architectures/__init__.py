"""The Architectures page's pieces, one tab each (each module's render() draws its tab).

- encoder.py: the masked-LM encoder: train, fill in the blank, the two attention masks, export.
- seq2seq.py: the encoder-decoder on couplets: train, greedy vs beam, cross-attention, held-out scores.
- moe.py: dense vs mixture of experts at the same active parameters: curves, routing heatmap.
- distributed.py: DDP / FSDP on several processes, each rank's curve, the memory calculator.
"""
