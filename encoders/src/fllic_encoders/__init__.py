"""The encoders of fllic's current models: what ``fllic compress`` needs beyond what decoding needs.

fllic itself ships the decoder part of every model it has shipped (the
``-decoder.npz`` files), so a base install opens every .fllic file without
PyTorch. Encoding also needs each current model's float encoder (g_a, h_a)
and denoising trunk; they ship here, as the ``.pt`` files of fllic's weights
folder, and ``pip install 'fllic[encode]'`` installs this package with
PyTorch. fllic looks for a model file in its own weights folder first (a
checkout has every file there), then in :data:`WEIGHTS`.
"""

from pathlib import Path

WEIGHTS = Path(__file__).resolve().parent / "weights"
