# Stand-in for text-generation-webui's modules package (tests only).
