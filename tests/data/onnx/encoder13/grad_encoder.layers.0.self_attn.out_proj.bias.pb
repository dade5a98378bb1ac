 B(encoder.layers.0.self_attn.out_proj.biasJ€Hø¼üš<Ñë½p+½P5;…R’½Œ[<Öì=v¶	=¿;Ä<nvò< µ':ĞáI<wSÔ<f¦â¼lC<ú"K='?µ;³2<±ŒÑ<‚s=5x¼›B½,Ky=³Â¼Ä—=¢ÙU<Éë¹‡I
½4j&¼Ö)›½ö½