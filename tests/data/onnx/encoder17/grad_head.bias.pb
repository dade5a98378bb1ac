
B	head.biasJ(xL>¤Ú=oÃ=ó-H½æÝÖ=ƒß ¾HK*¾Àþï¼D9¾=òŸ=