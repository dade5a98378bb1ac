B
bn1.weightJ iPf<I³ý; 7¶<•^ö:¸­Q¼Ë];•Sºi`½