 B(encoder.layers.1.self_attn.out_proj.biasJ€æi½d‚¼n1½"==‰«=z’R½²½rH=6‘=‹k›<Õ5¼I‚†< úû7f2æ»ørq¼0f½+ë’¼\Îœ½
½u4ğ<“¶<Õ x<“6
=gz5½7×P¼Vœ¼ê2<¢ôaº&Ÿu¼ş¥1=y`<]W=