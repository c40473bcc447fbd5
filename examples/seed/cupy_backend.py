from sega_core import CuPyBackendNeuralNetwork
import numpy as np

# Generate sample data
X_train = np.random.rand(100, 64)
y_train = np.random.randint(0, 10, size=100)

# Initialize and train the neural network
nn = CuPyBackendNeuralNetwork(layers=[64, 32, 10], dropout_rate=0.2, reg_lambda=0.01)
nn.train(X_train, y_train, epochs=50, batch_size=16)

# Predict on new data
predictions = nn.predict(X_train)
print(predictions)
