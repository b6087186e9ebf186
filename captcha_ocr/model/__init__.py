"""The network (residual CNN + BiLSTM), its heads and losses, checkpoint loading and ONNX export."""
