# Stand-in for text-generation-webui's api extension (tests only): server.py serves its ports itself.
