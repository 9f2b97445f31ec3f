"""The WVS human answer sources: the official WVS-7 CSV (``official``), GlobalOpinionQA rows
(``global_opinions``) and the item catalog (``catalog``)."""
