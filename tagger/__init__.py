"""A multi-label audio tagger (Dieleman & Schrauwen's end-to-end network), its training and ROC-AUC evaluation."""
