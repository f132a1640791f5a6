"""The live layer, shared by every transport: what a room's live news looks like on the wire and the
rules a reconnecting client catches up by. No NiceGUI and no database here: pages/ (the browser over
socket.io) and api/ (the room socket, issue 11) build on it; it builds on the domain.
"""
