"""The Compression page's pieces, one tab each (each module's render() draws its tab): table (every method
on the quantization page's harness), pruning, distill, gptq, qat."""
