# Stand-in for text-generation-webui's openai extension (tests only): server.py serves OPENEDAI_PORT itself.
