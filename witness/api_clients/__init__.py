"""One client class per ComfyUI endpoint group, each built on a shared HttpClient."""
