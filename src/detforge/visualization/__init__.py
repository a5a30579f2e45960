"""Drawing boxes, labels and masks on images (PIL + numpy; no torch)."""

from detforge.visualization.colors import PALETTE, color_for, color_for_name, text_color_for
from detforge.visualization.draw import draw_boxes, format_label, place_tag

__all__ = ["PALETTE", "color_for", "color_for_name", "draw_boxes", "format_label", "place_tag", "text_color_for"]
