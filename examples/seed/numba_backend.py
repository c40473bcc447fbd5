from sega_core import NumbaBackendNeuralNetwork
import numpy as np

# Generate sample data
X_train = np.random.rand(100, 64)
y_train = np.random.randint(0, 10, size=100)

# Initialize and train the neural network
nn = NumbaBackendNeuralNetwork(layers=[64, 32, 10], compile_numba=True)
nn.train(X_train, y_train, epochs=50, batch_size=16)

# Predict on new data
predictions = nn.predict(X_train)
print(predictions)
