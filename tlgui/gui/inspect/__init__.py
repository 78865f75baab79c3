"""Step 4, look inside: feature maps, predictions, Grad-CAM, ideal images and adversarial
examples, for the pretrained backbone or a fine-tuned model.

One module per tab (``features_tab``, ``gradcam_tab``, ``ideal_tab``, ``adversarial_tab``);
``pane`` chooses the model and the image; ``jobs`` runs the work, one thread per kind, so that
no tab cancels another's; ``views`` holds the pictures they share. Every computation runs in
a worker thread; the pane only shows the pictures it sends back.
"""

from .pane import InspectPane
from .views import percent

__all__ = ["InspectPane", "percent"]
