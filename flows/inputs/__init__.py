"""Real inputs: what a study is (``study``), where each layout keeps its CT and masks
(``layouts``: radgenome, totalsegmentator, generic), opening and checking NIfTI (``nifti``) and
staging masks between reading and writing (``staging``). Never imports the phantom."""
