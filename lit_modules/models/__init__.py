"""Small recognizers trained here (``train.py fit --config configs/asr/<model>.yaml``)."""
