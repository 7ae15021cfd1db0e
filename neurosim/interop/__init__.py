"""Moving networks between neurosim and other tools (snnTorch: :mod:`neurosim.interop.snntorch`)."""
