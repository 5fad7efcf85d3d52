"""Linear-probe CLIP baseline (CLIP paper, Appendix A3): frozen image features + logistic regression.

    python lpclip/feat_extractor.py ...   # FEATDIR/<DatasetName>/{train,val,test}.npz
    python lpclip/linear_probe.py ...     # few-shot logistic regression, report/ and run folders

See lpclip/README.md.
"""
