"""Colour: the k-means palette and nearest-colour labels, CIE Lab and its ab bins, and the
image-quality metrics (PSNR, SSIM, colourfulness, ab-error AuC)."""
