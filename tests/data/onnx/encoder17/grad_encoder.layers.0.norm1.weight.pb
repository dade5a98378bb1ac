 Bencoder.layers.0.norm1.weightJ€ãkÙ;K‚m¼ØN<²'½8D“ª;­2¼ÆÛF:f0I¼._æ»EO<Ë,º J<yr‰:ŠÑD;´wc;\6§<râ¢»Ğó¼úÔÑ»@*¼~T*¼zÛ»;	'¼Œ;¦É§<Z>¼4iè»ß ¼

îºÖÅ;V^l;íÃX¹