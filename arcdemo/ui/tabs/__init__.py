"""One module per tab: its gradio-free service functions, then ``build(ctx)``, its components and their wiring."""
